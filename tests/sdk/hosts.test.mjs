// hosts.test.mjs - vaults and managed HSM pools addressed by host name, as Azure addresses
// NAME.vault.azure.net and NAME.managedhsm.azure.net: https://dev.vault.localhost:PORT and
// https://devhsm.managedhsm.localhost:PORT, reached through the documented proxyOptions and a
// loopback CONNECT proxy (hostproxy.mjs). The pool tests run when vaultd has a dev HSM pool
// (KVAULT_SDK_MHSM_URL, set by test_sdk.sh from client.conf).
import assert from "node:assert/strict";
import { after, before } from "node:test";
import { createHash, randomBytes } from "node:crypto";
import { CryptographyClient, KeyClient } from "@azure/keyvault-keys";
import { startHostProxy } from "./hostproxy.mjs";
import { clientOptions, credential, expectRestError, keyClient, sdkTest, uniqueName, vaultUrl } from "./vault.mjs";

const port = new URL(vaultUrl).port;
const namedVaultUrl = `https://dev.vault.localhost:${port}`;
const mhsmUrl = process.env.KVAULT_SDK_MHSM_URL;
const noPool = mhsmUrl ? false : "vaultd has no dev HSM pool (no [vault devhsm] in client.conf)";

let proxy;
let opts; // client options with the proxy
before(async () => {
  proxy = await startHostProxy(port);
  opts = { ...clientOptions, proxyOptions: proxy.proxyOptions };
});
after(async () => {
  await proxy?.close();
});

sdkTest("a vault addressed by host name (dev.vault.localhost) is the default vault", async () => {
  const name = uniqueName("host-key");
  const created = await keyClient.createEcKey(name, { curve: "P-256" });
  const named = new KeyClient(namedVaultUrl, credential, opts);
  const got = await named.getKey(name);
  assert.equal(got.properties.version, created.properties.version);
  assert.equal(got.properties.vaultUrl, namedVaultUrl, "kid does not carry the request's host");
  const client = new CryptographyClient(got.id, credential, opts);
  const d = createHash("sha256").update("by host name").digest();
  const signed = await client.sign("ES256", d);
  assert.equal((await client.verify("ES256", d, signed.result)).result, true);
});

let pool; // KeyClient for the HSM pool
function poolClient() {
  pool ??= new KeyClient(mhsmUrl, credential, opts);
  return pool;
}

sdkTest("HSM pool: createRsaKey hsm: true makes an RSA-HSM key that signs (PS256)", { skip: noPool }, async () => {
  const key = await poolClient().createRsaKey(uniqueName("pool-rsa"), { keySize: 2048, hsm: true });
  assert.equal(key.keyType, "RSA-HSM");
  assert.equal(key.properties.vaultUrl, mhsmUrl);
  const client = new CryptographyClient(key.id, credential, opts);
  const d = createHash("sha256").update("pool").digest();
  const signed = await client.sign("PS256", d);
  assert.equal((await client.verify("PS256", d, signed.result)).result, true);
});

sdkTest("HSM pool: createEcKey hsm: true makes an EC-HSM key that signs (ES384)", { skip: noPool }, async () => {
  const key = await poolClient().createEcKey(uniqueName("pool-ec"), { curve: "P-384", hsm: true });
  assert.equal(key.keyType, "EC-HSM");
  const client = new CryptographyClient(key.id, credential, opts);
  const d = createHash("sha384").update("pool").digest();
  const signed = await client.sign("ES384", d);
  assert.equal(signed.result.length, 96);
  assert.equal((await client.verify("ES384", d, signed.result)).result, true);
});

sdkTest("HSM pool: a software key type (RSA) is refused with 400", { skip: noPool }, async () => {
  await expectRestError(poolClient().createRsaKey(uniqueName("pool-soft"), { keySize: 2048 }), 400);
});

let oct; // CryptographyClient for an oct-HSM AES-256 key
async function octClient() {
  if (!oct) {
    const key = await poolClient().createOctKey(uniqueName("pool-aes"), { keySize: 256, hsm: true });
    assert.equal(key.keyType, "oct-HSM");
    assert.equal(key.key.k, undefined, "symmetric key material returned");
    oct = new CryptographyClient(key.id, credential, opts);
  }
  return oct;
}

sdkTest("HSM pool: oct-HSM A256GCM encrypt + decrypt with AAD (service-made IV)", { skip: noPool }, async () => {
  const client = await octClient();
  const plaintext = Buffer.from("gcm plaintext");
  const aad = Buffer.from("header");
  const enc = await client.encrypt({ algorithm: "A256GCM", plaintext, additionalAuthenticatedData: aad });
  assert.equal(enc.iv?.length, 12, "no 12-byte IV");
  assert.equal(enc.authenticationTag?.length, 16, "no 16-byte tag");
  const dec = await client.decrypt({
    algorithm: "A256GCM",
    ciphertext: enc.result,
    iv: enc.iv,
    authenticationTag: enc.authenticationTag,
    additionalAuthenticatedData: aad,
  });
  assert.deepEqual(Buffer.from(dec.result), plaintext);
});

sdkTest("HSM pool: oct-HSM A256CBCPAD encrypt + decrypt (client IV)", { skip: noPool }, async () => {
  const client = await octClient();
  const plaintext = Buffer.from("cbc plaintext, not a block multiple");
  const iv = randomBytes(16);
  const enc = await client.encrypt({ algorithm: "A256CBCPAD", plaintext, iv });
  assert.equal(enc.result.length % 16, 0);
  const dec = await client.decrypt({ algorithm: "A256CBCPAD", ciphertext: enc.result, iv });
  assert.deepEqual(Buffer.from(dec.result), plaintext);
});

sdkTest("HSM pool: oct-HSM A256KW wrapKey + unwrapKey", { skip: noPool }, async () => {
  const client = await octClient();
  const cek = randomBytes(32);
  const wrapped = await client.wrapKey("A256KW", cek);
  assert.equal(wrapped.result.length, 40);
  const unwrapped = await client.unwrapKey("A256KW", wrapped.result);
  assert.deepEqual(Buffer.from(unwrapped.result), cek);
});

sdkTest("HSM pool: getRandomBytes(32)", { skip: noPool }, async () => {
  const a = await poolClient().getRandomBytes(32);
  const b = await poolClient().getRandomBytes(32);
  assert.equal(a.length, 32);
  assert.notDeepEqual(Buffer.from(a), Buffer.from(b));
});
