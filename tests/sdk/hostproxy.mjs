// hostproxy.mjs - a loopback HTTP CONNECT proxy for the tests that address vaults and HSM
// pools by host name (dev.vault.localhost, devhsm.managedhsm.localhost) as Azure does.
// Node does not resolve *.localhost names without an /etc/hosts entry; the SDKs' documented
// proxyOptions send such requests through this proxy, which tunnels every *.localhost name
// to vaultd's port on 127.0.0.1 (TLS, SNI and Host stay end to end between SDK and vaultd).
import { createServer } from "node:http";
import { connect } from "node:net";

// startHostProxy(targetPort): resolves to { proxyOptions, close() }.
export function startHostProxy(targetPort) {
  const server = createServer((req, res) => {
    res.writeHead(405).end();
  });
  const sockets = new Set();
  server.on("connect", (req, clientSocket, head) => {
    sockets.add(clientSocket);
    clientSocket.on("close", () => sockets.delete(clientSocket));
    const host = req.url.replace(/:\d+$/, "");
    if (!host.endsWith(".localhost")) {
      clientSocket.end("HTTP/1.1 403 Forbidden\r\n\r\n");
      return;
    }
    const upstream = connect(targetPort, "127.0.0.1", () => {
      clientSocket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length) upstream.write(head);
      upstream.pipe(clientSocket);
      clientSocket.pipe(upstream);
    });
    upstream.on("error", () => clientSocket.destroy());
    clientSocket.on("error", () => upstream.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      server.unref(); // never keeps the test process alive
      resolve({
        proxyOptions: { host: "http://127.0.0.1", port: server.address().port },
        close: () =>
          new Promise((r) => {
            for (const s of sockets) s.destroy();
            server.close(r);
          }),
      });
    });
  });
}
