// keys.test.mjs - @azure/keyvault-keys KeyClient against vaultd: create (RSA, EC), import,
// get, list with paging, versions, update, rotate, rotation policy, delete/recover/purge
// (with the SDK's pollers), backup/restore, and the Azure error answers the SDK surfaces.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import {
  b64urlToBytes,
  collectPages,
  expectRestError,
  keyClient,
  poll,
  sdkTest,
  uniqueName,
  vaultUrl,
} from "./vault.mjs";

const rsaName = uniqueName("key-rsa");
const ecName = uniqueName("key-ec");

sdkTest("createRsaKey (2048) returns an RSA key with n and e", async () => {
  const key = await keyClient.createRsaKey(rsaName, { keySize: 2048 });
  assert.equal(key.name, rsaName);
  assert.equal(key.keyType, "RSA");
  assert.equal(key.key.n.length, 256, "modulus is not 2048 bits");
  assert.deepEqual([...key.key.e], [1, 0, 1]);
  assert.equal(key.key.d, undefined, "private exponent returned");
  assert.ok(key.properties.version.match(/^[0-9a-f]{32}$/), `version ${key.properties.version}`);
  assert.equal(key.properties.vaultUrl, vaultUrl);
  assert.equal(key.properties.enabled, true);
  assert.ok(key.properties.createdOn instanceof Date);
});

sdkTest("createKey RSA 3072 with tags and key_ops", async () => {
  const name = uniqueName("key-rsa3072");
  const key = await keyClient.createKey(name, "RSA", {
    keySize: 3072,
    keyOps: ["sign", "verify"],
    tags: { purpose: "sdk-test" },
  });
  assert.equal(key.key.n.length, 384);
  assert.deepEqual([...key.keyOperations].sort(), ["sign", "verify"]);
  assert.deepEqual(key.properties.tags, { purpose: "sdk-test" });
});

for (const curve of ["P-256", "P-384", "P-521", "P-256K"]) {
  sdkTest(`createEcKey (${curve}) returns an EC key with x and y`, async () => {
    const name = curve === "P-256" ? ecName : uniqueName(`key-ec-${curve.replace("-", "").toLowerCase()}`);
    const key = await keyClient.createEcKey(name, { curve });
    const width = { "P-256": 32, "P-256K": 32, "P-384": 48, "P-521": 66 }[curve];
    assert.equal(key.keyType, "EC");
    assert.equal(key.key.crv, curve);
    assert.equal(key.key.x.length, width);
    assert.equal(key.key.y.length, width);
  });
}

sdkTest("createKey with an unsupported key size is 400 BadParameter", async () => {
  await expectRestError(keyClient.createRsaKey(uniqueName("key-bad"), { keySize: 1000 }), 400, "BadParameter");
});

sdkTest("getKey: latest and by version", async () => {
  const latest = await keyClient.getKey(rsaName);
  assert.equal(latest.name, rsaName);
  const byVersion = await keyClient.getKey(rsaName, { version: latest.properties.version });
  assert.equal(byVersion.id, latest.id);
  assert.deepEqual(byVersion.key.n, latest.key.n);
});

sdkTest("getKey: unknown version is 404 KeyNotFound", async () => {
  await expectRestError(keyClient.getKey(rsaName, { version: "0".repeat(32) }), 404, "KeyNotFound");
});

sdkTest("listPropertiesOfKeys pages with nextLink (maxPageSize 2)", async () => {
  const names = [];
  for (let i = 0; i < 3; i++) {
    const k = await keyClient.createEcKey(uniqueName(`key-page${i}`), { curve: "P-256" });
    names.push(k.name);
  }
  const { items, pages } = await collectPages(keyClient.listPropertiesOfKeys(), 2);
  const listed = items.map((p) => p.name);
  for (const n of [rsaName, ecName, ...names]) assert.ok(listed.includes(n), `${n} not listed`);
  assert.ok(pages >= 3, `only ${pages} page(s) for ${items.length} keys`);
  // the list carries base identifiers (no version) and no key material
  const one = items.find((p) => p.name === rsaName);
  assert.equal(one.version, undefined);
  assert.equal(new Set(listed).size, listed.length, "a key is listed twice");
});

sdkTest("listPropertiesOfKeyVersions lists every version", async () => {
  const name = uniqueName("key-versions");
  const v1 = await keyClient.createEcKey(name, { curve: "P-256" });
  const v2 = await keyClient.createEcKey(name, { curve: "P-256" });
  const { items } = await collectPages(keyClient.listPropertiesOfKeyVersions(name), 1);
  const versions = items.map((p) => p.version).sort();
  assert.deepEqual(versions, [v1.properties.version, v2.properties.version].sort());
});

sdkTest("importKey (BYOK RSA JWK with private parts)", async () => {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = privateKey.export({ format: "jwk" });
  const key = {
    kty: "RSA",
    keyOps: ["sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey"],
  };
  for (const f of ["n", "e", "d", "p", "q", "dp", "dq", "qi"]) key[f] = b64urlToBytes(jwk[f]);
  const name = uniqueName("key-imported");
  const imported = await keyClient.importKey(name, key, { tags: { origin: "byok" } });
  assert.equal(imported.keyType, "RSA");
  assert.deepEqual(Buffer.from(imported.key.n), b64urlToBytes(jwk.n));
  assert.equal(imported.key.d, undefined, "private exponent returned");
});

sdkTest("importKey (EC P-256 JWK)", async () => {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = privateKey.export({ format: "jwk" });
  const key = { kty: "EC", crv: "P-256", x: b64urlToBytes(jwk.x), y: b64urlToBytes(jwk.y), d: b64urlToBytes(jwk.d) };
  const imported = await keyClient.importKey(uniqueName("key-imported-ec"), key);
  assert.equal(imported.key.crv, "P-256");
  assert.deepEqual(Buffer.from(imported.key.x), b64urlToBytes(jwk.x));
});

sdkTest("updateKeyProperties: tags, enabled, expiresOn", async () => {
  const name = uniqueName("key-update");
  const key = await keyClient.createEcKey(name, { curve: "P-256" });
  const exp = new Date(Math.floor(Date.now() / 1000 + 86400) * 1000);
  const updated = await keyClient.updateKeyProperties(name, key.properties.version, {
    tags: { stage: "updated" },
    expiresOn: exp,
    enabled: false,
  });
  assert.deepEqual(updated.properties.tags, { stage: "updated" });
  assert.equal(updated.properties.enabled, false);
  assert.equal(updated.properties.expiresOn.getTime(), exp.getTime());
  const { items } = await collectPages(keyClient.listPropertiesOfKeyVersions(name), 25);
  assert.equal(items[0].enabled, false);
});

sdkTest("rotateKey makes a new version of the same type and size", async () => {
  const before = await keyClient.getKey(rsaName);
  const rotated = await keyClient.rotateKey(rsaName);
  assert.equal(rotated.name, rsaName);
  assert.notEqual(rotated.properties.version, before.properties.version);
  assert.equal(rotated.keyType, "RSA");
  assert.equal(rotated.key.n.length, before.key.n.length);
  const latest = await keyClient.getKey(rsaName);
  assert.equal(latest.properties.version, rotated.properties.version);
});

sdkTest("rotation policy: update then get", async () => {
  const policy = await keyClient.updateKeyRotationPolicy(rsaName, {
    lifetimeActions: [{ action: "Rotate", timeAfterCreate: "P30D" }],
    expiresIn: "P90D",
  });
  assert.equal(policy.expiresIn, "P90D");
  const got = await keyClient.getKeyRotationPolicy(rsaName);
  assert.equal(got.expiresIn, "P90D");
  const rotate = got.lifetimeActions.find((a) => a.action === "Rotate");
  assert.ok(rotate, "no Rotate action");
  assert.equal(rotate.timeAfterCreate, "P30D");
});

sdkTest("beginDeleteKey + poller, getDeletedKey, listDeletedKeys", async () => {
  const name = uniqueName("key-delete");
  await keyClient.createRsaKey(name, { keySize: 2048 });
  const poller = await keyClient.beginDeleteKey(name, poll);
  const deleted = await poller.pollUntilDone();
  assert.equal(deleted.name, name);
  assert.ok(deleted.properties.recoveryId?.endsWith(`/deletedkeys/${name}`), `recoveryId ${deleted.properties.recoveryId}`);
  assert.ok(deleted.properties.deletedOn instanceof Date, "no deletedDate");
  assert.ok(deleted.properties.scheduledPurgeDate > deleted.properties.deletedOn, "no scheduledPurgeDate");
  await expectRestError(keyClient.getKey(name), 404, "KeyNotFound");
  const got = await keyClient.getDeletedKey(name);
  assert.equal(got.name, name);
  const { items } = await collectPages(keyClient.listDeletedKeys(), 25);
  assert.ok(items.some((d) => d.name === name), "deleted key not listed");
});

sdkTest("beginRecoverDeletedKey + poller brings the key back", async () => {
  const name = uniqueName("key-recover");
  const created = await keyClient.createEcKey(name, { curve: "P-256" });
  await (await keyClient.beginDeleteKey(name, poll)).pollUntilDone();
  const recovered = await (await keyClient.beginRecoverDeletedKey(name, poll)).pollUntilDone();
  assert.equal(recovered.name, name);
  assert.equal(recovered.properties.version, created.properties.version);
  const got = await keyClient.getKey(name);
  assert.deepEqual(got.key.x, created.key.x);
});

sdkTest("creating a key whose name is soft-deleted is 409 Conflict", async () => {
  const name = uniqueName("key-conflict");
  await keyClient.createEcKey(name, { curve: "P-256" });
  await (await keyClient.beginDeleteKey(name, poll)).pollUntilDone();
  await expectRestError(keyClient.createEcKey(name, { curve: "P-256" }), 409, "Conflict");
});

sdkTest("purgeDeletedKey removes the deleted key for good", async () => {
  const name = uniqueName("key-purge");
  await keyClient.createEcKey(name, { curve: "P-256" });
  await (await keyClient.beginDeleteKey(name, poll)).pollUntilDone();
  await keyClient.purgeDeletedKey(name);
  await expectRestError(keyClient.getDeletedKey(name), 404, "KeyNotFound");
  // the name is free again
  const again = await keyClient.createEcKey(name, { curve: "P-256" });
  assert.equal(again.name, name);
});

sdkTest("backupKey, purge, restoreKeyBackup", async () => {
  const name = uniqueName("key-backup");
  const created = await keyClient.createRsaKey(name, { keySize: 2048 });
  const blob = await keyClient.backupKey(name);
  assert.ok(blob instanceof Uint8Array && blob.length > 0, "empty backup");
  await (await keyClient.beginDeleteKey(name, poll)).pollUntilDone();
  await keyClient.purgeDeletedKey(name);
  const restored = await keyClient.restoreKeyBackup(blob);
  assert.equal(restored.name, name);
  assert.equal(restored.properties.version, created.properties.version);
  assert.deepEqual(restored.key.n, created.key.n);
});

sdkTest("key names are case-insensitive (get by an upper-case name)", async () => {
  const key = await keyClient.getKey(rsaName.toUpperCase());
  const latest = await keyClient.getKey(rsaName);
  assert.equal(key.properties.version, latest.properties.version);
  assert.equal(key.name.toLowerCase(), rsaName.toLowerCase());
});
