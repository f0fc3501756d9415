// crypto.test.mjs - @azure/keyvault-keys CryptographyClient against vaultd: sign/verify
// (RSA PKCS#1 and PSS, ECDSA), encrypt/decrypt and wrapKey/unwrapKey (RSA-OAEP-256 goes to the
// service; RSA-OAEP / RSA1_5 encrypt locally and decrypt remotely), cross-checked with node's
// own crypto so that signatures and ciphertexts are standard.
import assert from "node:assert/strict";
import { before } from "node:test";
import { createHash, createPublicKey, publicEncrypt, randomBytes, verify as nodeVerify, constants } from "node:crypto";
import { CryptographyClient } from "@azure/keyvault-keys";
import { credential, clientOptions, expectRestError, keyClient, sdkTest, uniqueName } from "./vault.mjs";

const rsaName = uniqueName("crypto-rsa");
let rsaKey; // KeyVaultKey
let rsa; // CryptographyClient for the versioned RSA key
const ec = {}; // curve -> { key, client }

// A KeyObject for the public part of a KeyVaultKey's JWK, for local cross-checks.
function publicKeyOf(key) {
  const jwk = { kty: key.key.kty.replace("-HSM", "") };
  if (jwk.kty === "RSA") {
    jwk.n = Buffer.from(key.key.n).toString("base64url");
    jwk.e = Buffer.from(key.key.e).toString("base64url");
  } else {
    jwk.crv = key.key.crv === "P-256K" ? "secp256k1" : key.key.crv;
    jwk.x = Buffer.from(key.key.x).toString("base64url");
    jwk.y = Buffer.from(key.key.y).toString("base64url");
  }
  return createPublicKey({ key: jwk, format: "jwk" });
}

const hashOf = { 256: "sha256", 384: "sha384", 512: "sha512" };
const digest = (bits, data) => createHash(hashOf[bits]).update(data).digest();

before(async () => {
  rsaKey = await keyClient.createRsaKey(rsaName, { keySize: 2048 });
  rsa = new CryptographyClient(rsaKey.id, credential, clientOptions);
});

for (const alg of ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]) {
  sdkTest(`sign + verify ${alg} (RSA 2048), signature checks with node crypto`, async () => {
    const bits = Number(alg.slice(2));
    const data = Buffer.from(`message for ${alg}`);
    const d = digest(bits, data);
    const signed = await rsa.sign(alg, d);
    assert.equal(signed.algorithm, alg);
    assert.equal(signed.keyID, rsaKey.id);
    assert.equal(signed.result.length, 256);
    const ok = await rsa.verify(alg, d, signed.result);
    assert.equal(ok.result, true, "service says its own signature is invalid");
    const bad = Buffer.from(signed.result);
    bad[10] ^= 1;
    assert.equal((await rsa.verify(alg, d, bad)).result, false, "a corrupted signature verified");
    const pss = alg.startsWith("PS");
    const local = nodeVerify(hashOf[bits], data, {
      key: publicKeyOf(rsaKey),
      padding: pss ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING,
      saltLength: pss ? bits / 8 : undefined,
    }, Buffer.from(signed.result));
    assert.equal(local, true, "node crypto rejects the signature");
  });
}

sdkTest("signData + verifyData RS256 (client hashes, local verify)", async () => {
  const data = Buffer.from("sign the data, not the digest");
  const signed = await rsa.signData("RS256", data);
  const ok = await rsa.verifyData("RS256", data, signed.result);
  assert.equal(ok.result, true);
});

for (const [curve, alg, bits, width] of [
  ["P-256", "ES256", 256, 64],
  ["P-384", "ES384", 384, 96],
  ["P-521", "ES512", 512, 132],
  ["P-256K", "ES256K", 256, 64],
]) {
  sdkTest(`sign + verify ${alg} (${curve}), raw R||S checks with node crypto`, async () => {
    const key = await keyClient.createEcKey(uniqueName(`crypto-${alg.toLowerCase()}`), { curve });
    const client = new CryptographyClient(key, credential, clientOptions); // from a KeyVaultKey
    ec[curve] = { key, client };
    const data = Buffer.from(`message for ${alg}`);
    const d = digest(bits, data);
    const signed = await client.sign(alg, d);
    assert.equal(signed.result.length, width, "not a fixed-width R||S signature");
    assert.equal((await client.verify(alg, d, signed.result)).result, true);
    const local = nodeVerify(hashOf[bits], data, { key: publicKeyOf(key), dsaEncoding: "ieee-p1363" }, Buffer.from(signed.result));
    assert.equal(local, true, "node crypto rejects the signature");
  });
}

sdkTest("versionless key id: CryptographyClient(.../keys/NAME) signs with the latest version", async () => {
  const client = new CryptographyClient(`${rsaKey.properties.vaultUrl}/keys/${rsaName}`, credential, clientOptions);
  const d = digest(256, "versionless");
  const signed = await client.sign("RS256", d);
  assert.equal((await rsa.verify("RS256", d, signed.result)).result, true);
});

sdkTest("sign with the wrong algorithm for the key type is 400 BadParameter", async () => {
  await expectRestError(rsa.sign("ES256", digest(256, "x")), 400, "BadParameter");
});

sdkTest("encrypt + decrypt RSA-OAEP-256 (both remote)", async () => {
  const plaintext = Buffer.from("attack at dawn");
  const enc = await rsa.encrypt({ algorithm: "RSA-OAEP-256", plaintext });
  assert.equal(enc.algorithm, "RSA-OAEP-256");
  assert.equal(enc.result.length, 256);
  const dec = await rsa.decrypt({ algorithm: "RSA-OAEP-256", ciphertext: enc.result });
  assert.deepEqual(Buffer.from(dec.result), plaintext);
});

sdkTest("decrypt RSA-OAEP-256 of a node-crypto ciphertext", async () => {
  const plaintext = randomBytes(32);
  const ciphertext = publicEncrypt(
    { key: publicKeyOf(rsaKey), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
    plaintext,
  );
  const dec = await rsa.decrypt({ algorithm: "RSA-OAEP-256", ciphertext });
  assert.deepEqual(Buffer.from(dec.result), plaintext);
});

for (const alg of ["RSA-OAEP", "RSA1_5"]) {
  sdkTest(`encrypt ${alg} (SDK, locally) + decrypt (remote)`, async () => {
    const plaintext = Buffer.from(`secret for ${alg}`);
    const enc = await rsa.encrypt({ algorithm: alg, plaintext });
    const dec = await rsa.decrypt({ algorithm: alg, ciphertext: enc.result });
    assert.deepEqual(Buffer.from(dec.result), plaintext);
  });
}

sdkTest("wrapKey + unwrapKey RSA-OAEP-256 (both remote)", async () => {
  const cek = randomBytes(32);
  const wrapped = await rsa.wrapKey("RSA-OAEP-256", cek);
  assert.equal(wrapped.result.length, 256);
  const unwrapped = await rsa.unwrapKey("RSA-OAEP-256", wrapped.result);
  assert.deepEqual(Buffer.from(unwrapped.result), cek);
});

sdkTest("wrapKey RSA-OAEP (SDK, locally) + unwrapKey (remote)", async () => {
  const cek = randomBytes(16);
  const wrapped = await rsa.wrapKey("RSA-OAEP", cek);
  const unwrapped = await rsa.unwrapKey("RSA-OAEP", wrapped.result);
  assert.deepEqual(Buffer.from(unwrapped.result), cek);
});

sdkTest("key_ops: the SDK refuses locally what the key's key_ops do not allow", async () => {
  const key = await keyClient.createRsaKey(uniqueName("crypto-signonly"), { keySize: 2048, keyOps: ["sign", "verify"] });
  assert.deepEqual([...key.keyOperations].sort(), ["sign", "verify"]);
  const client = new CryptographyClient(key.id, credential, clientOptions);
  await assert.rejects(client.decrypt({ algorithm: "RSA-OAEP-256", ciphertext: Buffer.alloc(256) }), /not supported/);
});

sdkTest("disabled key: sign is 403 Forbidden from the service", async () => {
  // The SDK does not check `enabled` itself (spec 7.9), so this reaches vaultd.
  const name = uniqueName("crypto-disabled");
  const key = await keyClient.createEcKey(name, { curve: "P-256" });
  await keyClient.updateKeyProperties(name, key.properties.version, { enabled: false });
  const client = new CryptographyClient(key.id, credential, clientOptions);
  await expectRestError(client.sign("ES256", digest(256, "x")), 403, "Forbidden");
});

sdkTest("rotated key: old version still verifies, new version signs", async () => {
  const name = uniqueName("crypto-rotate");
  const v1 = await keyClient.createEcKey(name, { curve: "P-256" });
  const d = digest(256, "before rotation");
  const c1 = new CryptographyClient(v1.id, credential, clientOptions);
  const sig1 = await c1.sign("ES256", d);
  const v2 = await keyClient.rotateKey(name);
  assert.notEqual(v2.id, v1.id);
  const c2 = new CryptographyClient(v2.id, credential, clientOptions);
  const sig2 = await c2.sign("ES256", d);
  assert.equal((await c1.verify("ES256", d, sig1.result)).result, true);
  assert.equal((await c2.verify("ES256", d, sig2.result)).result, true);
  assert.equal((await c2.verify("ES256", d, sig1.result)).result, false, "v2 verified v1's signature");
});

for (const [kind, create, alg, bits] of [
  ["RSA-HSM", (n) => keyClient.createRsaKey(n, { keySize: 2048, hsm: true }), "PS256", 256],
  ["EC-HSM", (n) => keyClient.createEcKey(n, { curve: "P-256", hsm: true }), "ES256", 256],
]) {
  sdkTest(`HSM-protected key (${kind}): create with hsm: true, sign, verify with node crypto`, async () => {
    const key = await create(uniqueName(`crypto-${kind.toLowerCase()}`));
    assert.equal(key.keyType, kind);
    const client = new CryptographyClient(key.id, credential, clientOptions);
    const data = Buffer.from(`message for ${kind}`);
    const signed = await client.sign(alg, digest(bits, data));
    assert.equal((await client.verify(alg, digest(bits, data), signed.result)).result, true);
    const opts = kind === "EC-HSM"
      ? { key: publicKeyOf(key), dsaEncoding: "ieee-p1363" }
      : { key: publicKeyOf(key), padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
    assert.equal(nodeVerify(hashOf[bits], data, opts, Buffer.from(signed.result)), true);
  });
}
