/* test_rbac.c - unit tests of vaultd's RBAC building blocks (vaultd/vd_rbac_roles.c): Azure's
 * wildcard matching of data actions, the built-in role tables (ids, names, actions), the route
 * action -> vault / managed HSM data action mapping, and role assignment scopes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vd_rbac_roles.h"

#define V VD_RBAC_VAULT_PREFIX
#define M VD_RBAC_MHSM_PREFIX

static void test_match(void **state)
{
    (void)state;
    assert_true(vd_rbac_action_match(V "*", V "keys/sign/action"));
    assert_true(vd_rbac_action_match(V "keys/*", V "keys/delete"));
    assert_false(vd_rbac_action_match(V "keys/*", V "secrets/delete"));
    assert_true(vd_rbac_action_match(V "*/read", V "keys/read"));
    assert_true(vd_rbac_action_match(V "*/read", V "certificatecas/read"));
    assert_false(vd_rbac_action_match(V "*/read", V "secrets/getSecret/action"));
    assert_false(vd_rbac_action_match(V "*/read", V "keys/read/action"));
    assert_true(vd_rbac_action_match("microsoft.keyvault/VAULTS/KEYS/READ", V "keys/read"));
    assert_true(vd_rbac_action_match("*", "anything/at/all"));
    assert_true(vd_rbac_action_match("a*b*c", "aXXbYYc"));
    assert_true(vd_rbac_action_match("a*b*c", "abbbc"));
    assert_false(vd_rbac_action_match("a*b*c", "aXXbYYcd"));
    assert_false(vd_rbac_action_match(V "keys/read", V "keys/read/action"));
    assert_false(vd_rbac_action_match(V "keys/read", V "keys/rea"));
    assert_false(vd_rbac_action_match(NULL, "x"));
}

static void test_role_tables(void **state)
{
    const vd_role_def *d;
    size_t i, vaults = 0, pools = 0;

    (void)state;
    for (i = 0; i < vd_rbac_role_count(); i++) {
        d = vd_rbac_role_at(i);
        assert_non_null(d);
        assert_int_equal(strlen(d->id), 36);
        assert_ptr_equal(vd_rbac_role_by_id(d->id), d);
        assert_ptr_equal(vd_rbac_role_by_name(d->name), d);
        assert_non_null(d->data_actions[0]);
        if (d->mhsm)
            pools++;
        else
            vaults++;
    }
    assert_int_equal(vaults, 10);
    assert_int_equal(pools, 8);
    d = vd_rbac_role_by_name("Key Vault Administrator");
    assert_string_equal(d->id, "00482a5a-887f-4fb3-b363-3b7fe8e74483");
    assert_ptr_equal(vd_rbac_role_by_id("/providers/Microsoft.Authorization/roleDefinitions/"
                                        "00482A5A-887F-4FB3-B363-3B7FE8E74483"),
                     d);
    assert_ptr_equal(vd_rbac_role_by_id("Microsoft.KeyVault/providers/Microsoft.Authorization/"
                                        "roleDefinitions/21dbd100-6940-42c2-9190-5d6cb909625b"),
                     vd_rbac_role_by_name("managed hsm crypto user"));
    assert_null(vd_rbac_role_by_id("/providers/x/00482a5a-887f-4fb3-b363-3b7fe8e74483"));
    assert_null(vd_rbac_role_by_id("00000000-0000-0000-0000-000000000000"));
    assert_ptr_equal(vd_rbac_role_by_name("Managed HSM Backup"),
                     vd_rbac_role_by_id("7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8"));
    assert_string_equal(vd_rbac_role_by_name("Key Vault Secrets User")->id,
                        "4633458b-17de-408a-b874-0445c86b69e6");
    assert_string_equal(vd_rbac_role_by_name("Managed HSM Crypto Auditor")->id,
                        "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3");
}

static bool allows(const char *role, const char *action)
{
    return vd_rbac_role_allows(vd_rbac_role_by_name(role), action);
}

static void test_role_allows(void **state)
{
    (void)state;
    assert_true(allows("Key Vault Administrator", V "secrets/getSecret/action"));
    assert_false(allows("Key Vault Administrator", M "keys/sign/action"));
    assert_true(allows("Key Vault Reader", V "keys/read"));
    assert_true(allows("Key Vault Reader", V "secrets/readMetadata/action"));
    assert_false(allows("Key Vault Reader", V "secrets/getSecret/action"));
    assert_false(allows("Key Vault Reader", V "keys/sign/action"));
    assert_true(allows("Key Vault Crypto Officer", V "keys/purge/action"));
    assert_true(allows("Key Vault Crypto Officer", V "keyrotationpolicies/write"));
    assert_false(allows("Key Vault Crypto Officer", V "secrets/readMetadata/action"));
    assert_true(allows("Key Vault Crypto User", V "keys/sign/action"));
    assert_false(allows("Key Vault Crypto User", V "keys/delete"));
    assert_false(allows("Key Vault Crypto User", V "keys/create/action"));
    assert_true(allows("Key Vault Crypto Service Encryption User", V "keys/unwrap/action"));
    assert_false(allows("Key Vault Crypto Service Encryption User", V "keys/sign/action"));
    assert_true(allows("Key Vault Crypto Service Release User", V "keys/release/action"));
    assert_false(allows("Key Vault Crypto Service Release User", V "keys/read"));
    assert_true(allows("Key Vault Certificates Officer", V "certificates/purge/action"));
    assert_false(allows("Key Vault Certificates Officer", V "secrets/getSecret/action"));
    assert_true(allows("Key Vault Certificate User", V "secrets/getSecret/action"));
    assert_false(allows("Key Vault Certificate User", V "certificates/delete"));
    assert_true(allows("Key Vault Secrets Officer", V "secrets/setSecret/action"));
    assert_false(allows("Key Vault Secrets Officer", V "keys/read"));
    assert_true(allows("Key Vault Secrets User", V "secrets/getSecret/action"));
    assert_false(allows("Key Vault Secrets User", V "secrets/setSecret/action"));
    assert_false(allows("Managed HSM Administrator", M "keys/sign/action"));
    assert_true(allows("Managed HSM Administrator", M "roleAssignments/write/action"));
    assert_true(allows("Managed HSM Crypto Officer", M "keys/deletedKeys/delete"));
    assert_false(allows("Managed HSM Crypto Officer", M "keys/create"));
    assert_true(allows("Managed HSM Crypto User", M "keys/create"));
    assert_true(allows("Managed HSM Crypto User", M "rng/action"));
    assert_false(allows("Managed HSM Crypto User", M "keys/deletedKeys/delete"));
    assert_true(allows("Managed HSM Crypto Service Encryption User", M "keys/wrap/action"));
    assert_false(allows("Managed HSM Crypto Service Encryption User", M "keys/create"));
    assert_true(allows("Managed HSM Crypto Auditor", M "keys/deletedKeys/read/action"));
    assert_false(allows("Managed HSM Crypto Auditor", M "keys/sign/action"));
    assert_true(allows("Managed HSM Backup User", M "keys/backup/action"));
    assert_false(allows("Managed HSM Backup User", M "keys/restore/action"));
    assert_true(allows("Managed HSM Policy Administrator", M "roleDefinitions/read/action"));
    assert_false(allows("Managed HSM Policy Administrator", M "keys/read/action"));
    assert_false(vd_rbac_role_allows(NULL, V "keys/read"));
}

static void test_not_data_actions(void **state)
{
    static const char *const da[] = {V "keys/*", NULL};
    static const char *const nda[] = {V "keys/delete", V "keys/*/purge*", NULL};
    const vd_role_def custom = {"11111111-1111-1111-1111-111111111111", "t", false, "", da, nda};

    (void)state;
    assert_true(vd_rbac_role_allows(&custom, V "keys/sign/action"));
    assert_false(vd_rbac_role_allows(&custom, V "keys/delete"));
    assert_false(vd_rbac_role_allows(&custom, V "keys/x/purge/action"));
}

static void check_action(bool mhsm, const char *route, const char *pattern, const char *want)
{
    char out[VD_RBAC_ACTION_MAX];

    assert_true(vd_rbac_data_action(mhsm, route, pattern, out, sizeof(out)));
    assert_string_equal(out, want);
}

static void test_action_map(void **state)
{
    char small[8];

    (void)state;
    check_action(false, "keys/sign/action", "keys/{n}/sign", V "keys/sign/action");
    check_action(true, "keys/sign/action", "keys/{n}/sign", M "keys/sign/action");
    check_action(false, "keys/read", "keys/{n}", V "keys/read");
    check_action(true, "keys/read", "keys/{n}", M "keys/read/action");
    check_action(true, "keys/read", "deletedkeys/{n}", M "keys/deletedKeys/read/action");
    check_action(false, "keys/read", "deletedkeys/{n}", V "keys/read");
    check_action(true, "keys/create/action", "keys/{n}/create", M "keys/create");
    check_action(true, "keys/delete", "keys/{n}", M "keys/delete");
    check_action(true, "keys/update/action", "keys/{n}", M "keys/write/action");
    check_action(true, "keys/purge/action", "deletedkeys/{n}", M "keys/deletedKeys/delete");
    check_action(true, "keys/recover/action", "deletedkeys/{n}/recover",
                 M "keys/deletedKeys/recover/action");
    check_action(false, "keys/purge/action", "deletedkeys/{n}", V "keys/purge/action");
    check_action(false, "deletedsecrets/delete", "deletedsecrets/{n}", V "secrets/purge/action");
    check_action(false, "deletedcertificates/read", "deletedcertificates", V "certificates/read");
    check_action(true, "rng/action", "rng", M "rng/action");
    assert_false(vd_rbac_data_action(false, "keys/read", "keys", small, sizeof(small)));
}

static void test_scopes(void **state)
{
    char out[VD_RBAC_SCOPE_MAX];

    (void)state;
    assert_true(vd_rbac_scope_normalize("/", false, out, sizeof(out)));
    assert_string_equal(out, "/");
    assert_true(vd_rbac_scope_normalize("", false, out, sizeof(out)));
    assert_string_equal(out, "/");
    assert_true(vd_rbac_scope_normalize("//Keys//k1/", false, out, sizeof(out)));
    assert_string_equal(out, "/keys/k1");
    assert_true(vd_rbac_scope_normalize("/keys", false, out, sizeof(out)));
    assert_string_equal(out, "/keys");
    assert_false(vd_rbac_scope_normalize("/secrets/s1", false, out, sizeof(out)));
    assert_true(vd_rbac_scope_normalize("/secrets/s1", true, out, sizeof(out)));
    assert_string_equal(out, "/secrets/s1");
    assert_false(vd_rbac_scope_normalize("/keys/k1/extra", true, out, sizeof(out)));
    assert_false(vd_rbac_scope_normalize("/keys/k_1", true, out, sizeof(out)));
    assert_false(vd_rbac_scope_normalize("/vaults", true, out, sizeof(out)));

    assert_true(vd_rbac_scope_covers("/", NULL, NULL));
    assert_true(vd_rbac_scope_covers("/", "keys", "k1"));
    assert_true(vd_rbac_scope_covers("/keys", "keys", NULL));
    assert_true(vd_rbac_scope_covers("/keys", "keys", "k2"));
    assert_false(vd_rbac_scope_covers("/keys", "secrets", "k2"));
    assert_true(vd_rbac_scope_covers("/keys/k1", "keys", "K1"));
    assert_false(vd_rbac_scope_covers("/keys/k1", "keys", "k2"));
    assert_false(vd_rbac_scope_covers("/keys/k1", "keys", NULL));
    assert_false(vd_rbac_scope_covers("/keys/k1", "keys", "k10"));
    assert_false(vd_rbac_scope_covers("/keys/k1", NULL, NULL));
    assert_false(vd_rbac_scope_covers("/keys/k1", "secrets", "k1"));

    assert_string_equal(vd_rbac_pattern_collection("keys/{n}/sign"), "keys");
    assert_string_equal(vd_rbac_pattern_collection("deletedkeys/"), "keys");
    assert_string_equal(vd_rbac_pattern_collection("deletedsecrets/{n}"), "secrets");
    assert_string_equal(vd_rbac_pattern_collection("certificates"), "certificates");
    assert_null(vd_rbac_pattern_collection("rng"));
    assert_null(vd_rbac_pattern_collection("keysx"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match),       cmocka_unit_test(test_role_tables),
        cmocka_unit_test(test_role_allows), cmocka_unit_test(test_not_data_actions),
        cmocka_unit_test(test_action_map),  cmocka_unit_test(test_scopes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
