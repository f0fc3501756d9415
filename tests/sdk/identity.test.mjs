// identity.test.mjs - @azure/identity against vaultd's Entra face (openid-configuration,
// v2.0 token endpoint) and the Key Vault challenge (401 + WWW-Authenticate) flow.
import assert from "node:assert/strict";
import { ClientSecretCredential } from "@azure/identity";
import { KeyClient } from "@azure/keyvault-keys";
import {
  authorityHost,
  clientId,
  credential,
  expectRestError,
  keyClient,
  sdkTest,
  tenantId,
  uniqueName,
  vaultUrl,
} from "./vault.mjs";

sdkTest("ClientSecretCredential gets a token for https://vault.azure.net/.default", async () => {
  const token = await credential.getToken("https://vault.azure.net/.default");
  assert.ok(token, "no token");
  assert.match(token.token, /^[\w-]+\.[\w-]+\.[\w-]+$/, "not a JWT");
  assert.ok(token.expiresOnTimestamp > Date.now() + 60_000, "token expires too soon");
  const claims = JSON.parse(Buffer.from(token.token.split(".")[1], "base64url").toString());
  assert.equal(claims.aud, "https://vault.azure.net");
  assert.equal(claims.tid, tenantId);
});

sdkTest("a wrong client secret is refused by the token endpoint", async () => {
  const bad = new ClientSecretCredential(tenantId, clientId, "not-the-secret", {
    authorityHost,
    disableInstanceDiscovery: true,
  });
  await assert.rejects(bad.getToken("https://vault.azure.net/.default"), (e) => {
    // @azure/identity reports MSAL's invalid_client as an Authentication*Error
    assert.match(e.name, /^Authentication(Required)?Error$/, `${e.name}: ${e.message}`);
    assert.match(e.message, /invalid_client/);
    return true;
  });
});

sdkTest("challenge: without disableChallengeResourceVerification a localhost vault is refused", async () => {
  // Spec 7.3: the SDK checks that the vault host ends in the challenge's resource host;
  // this proves vaultd's 401 challenge is parsed (resource="https://vault.azure.net").
  const strict = new KeyClient(vaultUrl, credential);
  await assert.rejects(strict.getKey(uniqueName("nochallenge")), (e) => {
    assert.match(e.message, /challenge resource|does not match/i, `${e.name}: ${e.message}`);
    return true;
  });
});

sdkTest("challenge: bodiless probe then authenticated request (get of an unknown key is 404 KeyNotFound)", async () => {
  await expectRestError(keyClient.getKey(uniqueName("missing")), 404, "KeyNotFound");
});
