// certificates.test.mjs - @azure/keyvault-certificates CertificateClient against vaultd:
// self-signed creation with the SDK's poller, get, policy, list, versions, the linked key
// (usable for signing) and secret (PEM with the private key), import, delete/recover/purge.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { constants, createHash, createPrivateKey, verify as nodeVerify, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CryptographyClient } from "@azure/keyvault-keys";
import {
  certificateClient,
  clientOptions,
  collectPages,
  credential,
  expectRestError,
  keyClient,
  poll,
  sdkTest,
  secretClient,
  uniqueName,
} from "./vault.mjs";

const name = uniqueName("cert");
const policy = {
  issuerName: "Self",
  subject: "CN=kvault SDK test",
  subjectAlternativeNames: { dnsNames: ["sdk.vault.localhost"] },
  keyType: "RSA",
  keySize: 2048,
  exportable: true,
  validityInMonths: 12,
  contentType: "application/x-pem-file",
};
let created; // KeyVaultCertificateWithPolicy

function needCreated() {
  assert.ok(created, "the certificate was not created (see the beginCreateCertificate test)");
}

// A self-signed certificate and key made by openssl: { pem (cert + PKCS#8 key), pfx, der }.
function opensslCertificate(cn, pfxPassword) {
  const dir = mkdtempSync(join(tmpdir(), "kvsdk-"));
  try {
    const run = (...args) => execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
    const key = join(dir, "key.pem"), crt = join(dir, "crt.pem"), pfx = join(dir, "c.pfx");
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", `/CN=${cn}`,
      "-keyout", key, "-out", crt);
    run("pkcs12", "-export", "-in", crt, "-inkey", key, "-out", pfx, "-passout", `pass:${pfxPassword}`);
    const crtPem = readFileSync(crt, "utf8");
    return {
      pem: crtPem + readFileSync(key, "utf8"),
      pfx: readFileSync(pfx),
      der: new X509Certificate(crtPem).raw,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

sdkTest("beginCreateCertificate (self-signed RSA policy) + poller", async () => {
  const poller = await certificateClient.beginCreateCertificate(name, policy, poll);
  created = await poller.pollUntilDone();
  assert.equal(created.name, name);
  assert.ok(created.properties.version, "no version");
  assert.ok(created.cer && created.cer.length > 100, "no DER certificate");
  const x509 = new X509Certificate(Buffer.from(created.cer));
  assert.match(x509.subject, /CN=kvault SDK test/);
  assert.match(x509.subjectAltName ?? "", /DNS:sdk\.vault\.localhost/);
  // (not checkIssued: OpenSSL also wants keyCertSign, which a self-signed leaf lacks)
  assert.equal(x509.issuer, x509.subject, "issuer is not the subject");
  assert.ok(x509.verify(x509.publicKey), "self-signature does not verify");
  const thumb = createHash("sha1").update(Buffer.from(created.cer)).digest();
  assert.deepEqual(Buffer.from(created.properties.x509Thumbprint), thumb, "x5t is not the SHA-1 thumbprint");
  assert.equal(created.properties.expiresOn.getTime(), new Date(x509.validTo).getTime(), "exp does not mirror notAfter");
});

sdkTest("getCertificate returns the certificate with its policy", async () => {
  needCreated();
  const got = await certificateClient.getCertificate(name);
  assert.equal(got.properties.version, created.properties.version);
  assert.deepEqual(Buffer.from(got.cer), Buffer.from(created.cer));
  assert.equal(got.policy.issuerName, "Self");
  assert.equal(got.policy.subject, "CN=kvault SDK test");
  assert.equal(got.policy.keyType, "RSA");
  assert.equal(got.policy.keySize, 2048);
  assert.ok(got.keyId?.includes(`/keys/${name}/${created.properties.version}`), `kid ${got.keyId}`);
  assert.ok(got.secretId?.includes(`/secrets/${name}/${created.properties.version}`), `sid ${got.secretId}`);
});

sdkTest("getCertificateVersion and getCertificatePolicy", async () => {
  needCreated();
  const v = await certificateClient.getCertificateVersion(name, created.properties.version);
  assert.deepEqual(Buffer.from(v.cer), Buffer.from(created.cer));
  const p = await certificateClient.getCertificatePolicy(name);
  assert.equal(p.contentType, "application/x-pem-file");
  assert.equal(p.validityInMonths, 12);
});

sdkTest("getCertificate of an unknown certificate is 404 CertificateNotFound", async () => {
  await expectRestError(certificateClient.getCertificate(uniqueName("no-such-cert")), 404, "CertificateNotFound");
});

sdkTest("the certificate's key is a managed key that signs (checked against the certificate)", async () => {
  needCreated();
  const key = await keyClient.getKey(name);
  assert.equal(key.properties.version, created.properties.version);
  assert.equal(key.properties.managed, true);
  const client = new CryptographyClient(key.id, credential, clientOptions);
  const data = Buffer.from("signed by the certificate's key");
  const signed = await client.sign("RS256", createHash("sha256").update(data).digest());
  const x509 = new X509Certificate(Buffer.from(created.cer));
  assert.equal(nodeVerify("sha256", data, x509.publicKey, Buffer.from(signed.result)), true);
});

sdkTest("the certificate's secret holds the PEM chain and private key", async () => {
  needCreated();
  const secret = await secretClient.getSecret(name);
  assert.equal(secret.properties.contentType, "application/x-pem-file");
  assert.equal(secret.properties.managed, true);
  assert.match(secret.value, /-----BEGIN CERTIFICATE-----/);
  assert.match(secret.value, /-----BEGIN (RSA )?PRIVATE KEY-----/);
  const priv = createPrivateKey(secret.value);
  const x509 = new X509Certificate(Buffer.from(created.cer));
  assert.ok(x509.checkPrivateKey(priv), "private key does not match the certificate");
});

sdkTest("beginCreateCertificate (self-signed EC P-256 policy)", async () => {
  const cert = await (
    await certificateClient.beginCreateCertificate(
      uniqueName("cert-ec"),
      { issuerName: "Self", subject: "CN=kvault SDK EC", keyType: "EC", keyCurveName: "P-256", validityInMonths: 1 },
      poll,
    )
  ).pollUntilDone();
  const x509 = new X509Certificate(Buffer.from(cert.cer));
  assert.equal(x509.publicKey.asymmetricKeyType, "ec");
});

sdkTest("listPropertiesOfCertificates and listPropertiesOfCertificateVersions", async () => {
  needCreated();
  const { items } = await collectPages(certificateClient.listPropertiesOfCertificates(), 25);
  assert.ok(items.some((c) => c.name === name), `${name} not listed`);
  const versions = await collectPages(certificateClient.listPropertiesOfCertificateVersions(name), 25);
  assert.deepEqual(versions.items.map((c) => c.version), [created.properties.version]);
});

sdkTest("importCertificate (PEM: certificate + PKCS#8 private key, made by openssl)", async () => {
  const made = opensslCertificate("kvault SDK PEM import", "unused");
  const n = uniqueName("cert-imported-pem");
  const imported = await certificateClient.importCertificate(n, Buffer.from(made.pem), {
    policy: { contentType: "application/x-pem-file" },
  });
  assert.deepEqual(Buffer.from(imported.cer), made.der);
  const secret = await secretClient.getSecret(n);
  assert.equal(secret.properties.contentType, "application/x-pem-file");
  assert.match(secret.value, /PRIVATE KEY-----/);
});

sdkTest("importCertificate (PKCS#12 with password, made by openssl); its key signs", async () => {
  const made = opensslCertificate("kvault SDK PFX import", "pfx-pass");
  const n = uniqueName("cert-imported-pfx");
  const imported = await certificateClient.importCertificate(n, made.pfx, { password: "pfx-pass" });
  assert.deepEqual(Buffer.from(imported.cer), made.der);
  const key = await keyClient.getKey(n);
  const client = new CryptographyClient(key.id, credential, clientOptions);
  const data = Buffer.from("signed by an imported key");
  const signed = await client.sign("PS256", createHash("sha256").update(data).digest());
  const pub = new X509Certificate(made.der).publicKey;
  assert.equal(nodeVerify("sha256", data, { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, Buffer.from(signed.result)), true);
});

sdkTest("beginDeleteCertificate + poller, recover, purge", async () => {
  const n = uniqueName("cert-delete");
  await (await certificateClient.beginCreateCertificate(n, { issuerName: "Self", subject: "CN=delete me" }, poll)).pollUntilDone();
  const deleted = await (await certificateClient.beginDeleteCertificate(n, poll)).pollUntilDone();
  assert.equal(deleted.name, n);
  assert.ok(deleted.recoveryId?.endsWith(`/deletedcertificates/${n}`), `recoveryId ${deleted.recoveryId}`);
  await expectRestError(keyClient.getKey(n), 404, "KeyNotFound");
  const recovered = await (await certificateClient.beginRecoverDeletedCertificate(n, poll)).pollUntilDone();
  assert.equal(recovered.name, n);
  await keyClient.getKey(n); // the linked key came back too
  await (await certificateClient.beginDeleteCertificate(n, poll)).pollUntilDone();
  await certificateClient.purgeDeletedCertificate(n);
  await expectRestError(certificateClient.getDeletedCertificate(n), 404, "CertificateNotFound");
});
