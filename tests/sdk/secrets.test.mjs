// secrets.test.mjs - @azure/keyvault-secrets SecretClient against vaultd: set/get (latest and
// by version), content type, list with paging, versions, update, delete/recover/purge with the
// SDK's pollers, backup/restore, and the 25 KiB limit.
import assert from "node:assert/strict";
import { collectPages, expectRestError, poll, sdkTest, secretClient, uniqueName, vaultUrl } from "./vault.mjs";

const name = uniqueName("secret");

sdkTest("setSecret + getSecret (latest) round-trips value and contentType", async () => {
  const set = await secretClient.setSecret(name, "s3cr3t value ✓", { contentType: "text/plain" });
  assert.equal(set.name, name);
  assert.equal(set.value, "s3cr3t value ✓");
  assert.ok(set.properties.version.match(/^[0-9a-f]{32}$/), `version ${set.properties.version}`);
  assert.equal(set.properties.vaultUrl, vaultUrl);
  const got = await secretClient.getSecret(name);
  assert.equal(got.value, "s3cr3t value ✓");
  assert.equal(got.properties.contentType, "text/plain");
  assert.equal(got.properties.enabled, true);
  assert.equal(got.properties.id, set.properties.id);
});

sdkTest("setSecret again makes a new version; getSecret by version gets the old one", async () => {
  const v1 = await secretClient.getSecret(name);
  const v2 = await secretClient.setSecret(name, "second value", { tags: { n: "2" } });
  assert.notEqual(v2.properties.version, v1.properties.version);
  assert.equal((await secretClient.getSecret(name)).value, "second value");
  const old = await secretClient.getSecret(name, { version: v1.properties.version });
  assert.equal(old.value, "s3cr3t value ✓");
});

sdkTest("getSecret of an unknown secret is 404 SecretNotFound", async () => {
  await expectRestError(secretClient.getSecret(uniqueName("no-such-secret")), 404, "SecretNotFound");
});

sdkTest("listPropertiesOfSecrets pages with nextLink and carries no values", async () => {
  for (let i = 0; i < 3; i++) await secretClient.setSecret(uniqueName(`secret-page${i}`), `v${i}`);
  const { items, pages } = await collectPages(secretClient.listPropertiesOfSecrets(), 2);
  const names = items.map((p) => p.name);
  assert.ok(names.includes(name), `${name} not listed`);
  for (let i = 0; i < 3; i++) assert.ok(names.includes(uniqueName(`secret-page${i}`)));
  assert.ok(pages >= 2, `only ${pages} page(s)`);
  assert.ok(items.every((p) => p.value === undefined), "list returned a value");
});

sdkTest("listPropertiesOfSecretVersions lists both versions", async () => {
  const { items } = await collectPages(secretClient.listPropertiesOfSecretVersions(name), 1);
  assert.equal(items.length, 2);
  assert.ok(items.every((p) => p.name === name && p.version));
});

sdkTest("updateSecretProperties: contentType, tags, enabled", async () => {
  const latest = await secretClient.getSecret(name);
  const updated = await secretClient.updateSecretProperties(name, latest.properties.version, {
    contentType: "application/json",
    tags: { stage: "updated" },
  });
  assert.equal(updated.contentType, "application/json");
  assert.deepEqual(updated.tags, { stage: "updated" });
  assert.equal((await secretClient.getSecret(name)).properties.contentType, "application/json");
});

sdkTest("a secret value over 25 KiB is refused with a 4xx", async () => {
  const err = await secretClient.setSecret(uniqueName("secret-big"), "x".repeat(25 * 1024 + 1)).then(
    () => null,
    (e) => e,
  );
  assert.ok(err, "an oversized secret was stored");
  assert.ok(err.statusCode >= 400 && err.statusCode < 500 && err.statusCode !== 404,
    `got ${err.name} ${err.statusCode} ${err.code}: ${err.message}`);
});

sdkTest("a 25 KiB secret value is accepted", async () => {
  const value = "y".repeat(25 * 1024);
  const set = await secretClient.setSecret(uniqueName("secret-25k"), value);
  assert.equal((await secretClient.getSecret(set.name)).value.length, value.length);
});

sdkTest("beginDeleteSecret + poller, getDeletedSecret, listDeletedSecrets", async () => {
  const n = uniqueName("secret-delete");
  await secretClient.setSecret(n, "to be deleted");
  const deleted = await (await secretClient.beginDeleteSecret(n, poll)).pollUntilDone();
  assert.equal(deleted.name, n);
  assert.ok(deleted.properties.recoveryId?.endsWith(`/deletedsecrets/${n}`), `recoveryId ${deleted.properties.recoveryId}`);
  assert.ok(deleted.properties.deletedOn instanceof Date, "no deletedDate");
  await expectRestError(secretClient.getSecret(n), 404, "SecretNotFound");
  assert.equal((await secretClient.getDeletedSecret(n)).name, n);
  const { items } = await collectPages(secretClient.listDeletedSecrets(), 25);
  assert.ok(items.some((d) => d.name === n), "deleted secret not listed");
});

sdkTest("beginRecoverDeletedSecret + poller brings the secret back", async () => {
  const n = uniqueName("secret-recover");
  await secretClient.setSecret(n, "recover me");
  await (await secretClient.beginDeleteSecret(n, poll)).pollUntilDone();
  const recovered = await (await secretClient.beginRecoverDeletedSecret(n, poll)).pollUntilDone();
  assert.equal(recovered.name, n);
  assert.equal((await secretClient.getSecret(n)).value, "recover me");
});

sdkTest("purgeDeletedSecret frees the name", async () => {
  const n = uniqueName("secret-purge");
  await secretClient.setSecret(n, "purge me");
  await (await secretClient.beginDeleteSecret(n, poll)).pollUntilDone();
  await expectRestError(secretClient.setSecret(n, "too early"), 409, "Conflict");
  await secretClient.purgeDeletedSecret(n);
  await expectRestError(secretClient.getDeletedSecret(n), 404, "SecretNotFound");
  assert.equal((await secretClient.setSecret(n, "fresh")).value, "fresh");
});

sdkTest("backupSecret, purge, restoreSecretBackup", async () => {
  const n = uniqueName("secret-backup");
  await secretClient.setSecret(n, "v1");
  await secretClient.setSecret(n, "v2");
  const blob = await secretClient.backupSecret(n);
  assert.ok(blob instanceof Uint8Array && blob.length > 0, "empty backup");
  await (await secretClient.beginDeleteSecret(n, poll)).pollUntilDone();
  await secretClient.purgeDeletedSecret(n);
  const restored = await secretClient.restoreSecretBackup(blob);
  assert.equal(restored.name, n);
  assert.equal((await secretClient.getSecret(n)).value, "v2");
  const { items } = await collectPages(secretClient.listPropertiesOfSecretVersions(n), 25);
  assert.equal(items.length, 2, "restore lost a version");
});

sdkTest("secret names are case-insensitive (get by an upper-case name)", async () => {
  const got = await secretClient.getSecret(name.toUpperCase());
  assert.equal(got.name.toLowerCase(), name.toLowerCase());
});
