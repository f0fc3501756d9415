// vault.mjs - shared set-up for the Azure SDK for JavaScript tests against vaultd: the
// credential and clients, built only from the SDKs' documented options, plus small helpers.
//
// Environment (set by tests/integration/test_sdk.sh):
//   KVAULT_SDK_VAULT_URL   vault URL, e.g. https://localhost:8443 (vaultd's default vault)
//   AZURE_AUTHORITY_HOST   token authority, e.g. https://localhost:8443 (vaultd's Entra face)
//   AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET   the dev service principal
//   NODE_EXTRA_CA_CERTS    vaultd's dev CA (ca.pem), read by node itself
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { ClientSecretCredential } from "@azure/identity";
import { KeyClient } from "@azure/keyvault-keys";
import { SecretClient } from "@azure/keyvault-secrets";
import { CertificateClient } from "@azure/keyvault-certificates";

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is not set (run tests/integration/test_sdk.sh)`);
  return v;
}

export const vaultUrl = need("KVAULT_SDK_VAULT_URL");
export const authorityHost = need("AZURE_AUTHORITY_HOST");
export const tenantId = need("AZURE_TENANT_ID");
export const clientId = need("AZURE_CLIENT_ID");
export const clientSecret = need("AZURE_CLIENT_SECRET");

// A loopback authority: MSAL must not ask login.microsoftonline.com for instance discovery.
export const credential = new ClientSecretCredential(tenantId, clientId, clientSecret, {
  authorityHost,
  disableInstanceDiscovery: true,
});

// The vault is addressed as localhost/127.0.0.1, which can never end in the challenge's
// resource host (vault.azure.net): the documented switch turns that check off.
export const clientOptions = { disableChallengeResourceVerification: true };

export const keyClient = new KeyClient(vaultUrl, credential, clientOptions);
export const secretClient = new SecretClient(vaultUrl, credential, clientOptions);
export const certificateClient = new CertificateClient(vaultUrl, credential, clientOptions);

// Poll quickly: vaultd finishes deletes, recoveries and certificate creation at once.
export const poll = { intervalInMs: 100 };

// Names unique to this run, so the suite can run again against the same vaultd.
const runId = randomBytes(3).toString("hex");
export function uniqueName(what) {
  return `sdk-${what}-${runId}`;
}

// An SDK error as one line: what was asked and what the service answered.
function describeError(e) {
  if (e && e.name === "RestError") {
    const req = e.request ? `${e.request.method} ${e.request.url.replace(/^https:\/\/[^/]+/, "")}` : "?";
    return `RestError: HTTP ${e.statusCode ?? "-"} code=${e.code ?? "-"} on ${req}: ${e.message}`;
  }
  return `${e?.name ?? "Error"}: ${e?.message ?? String(e)}`;
}

// sdkTest(name, [options,] fn): a node:test case whose failure message is the SDK error in
// one line (status, Azure error code, request) rather than a dump of the request object.
export function sdkTest(name, options, fn) {
  if (typeof options === "function") [options, fn] = [{}, options];
  return test(name, { timeout: 60_000, ...options }, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      if (e && e.name === "AssertionError") throw e;
      const err = new Error(describeError(e));
      err.stack = `${err.message}\n${(e?.stack ?? "").split("\n").slice(1, 6).join("\n")}`;
      throw err;
    }
  });
}

// expectRestError(promise, status, code?): the call must fail with that HTTP status (and
// Azure error code, when given); returns the error.
export async function expectRestError(promise, status, code) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  if (!err) throw new Error(`expected HTTP ${status}${code ? " " + code : ""}, but the call succeeded`);
  if (err.name !== "RestError" || err.statusCode !== status || (code && err.code !== code)) {
    throw new Error(`expected HTTP ${status}${code ? " " + code : ""}, got ${describeError(err)}`);
  }
  return err;
}

// Collects an SDK paged iterator page by page (maxPageSize per page) and returns
// { items, pages }: every item and the number of pages, to show nextLink paging works.
export async function collectPages(iter, maxPageSize) {
  const items = [];
  let pages = 0;
  for await (const page of iter.byPage({ maxPageSize })) {
    pages++;
    items.push(...page);
  }
  return { items, pages };
}

export function b64urlToBytes(s) {
  return Buffer.from(s, "base64url");
}
