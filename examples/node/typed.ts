// A TypeScript user of pcp-rs; `tsc --strict --noEmit` must accept it
// (bindings/node/run-tests.sh checks it). It runs against the test server.
import { PCPClient, Client, Mapping, PCPError, ERROR_CODES, Protocol, Option, discover, testing } from 'pcp-rs';
import type { ClassicMapping, ErrorCode, Discovered } from 'pcp-rs';

async function main(): Promise<void> {
  const server = new testing.Server({ maxLifetime: 3600 });

  // The classic API.
  const classic = new PCPClient(server.address, { listenAnnounce: false });
  const r: ClassicMapping = await classic.createMapping(8080);
  console.log(`${r.externalIP}:${r.externalPort} for ${r.lifetime} s`);
  const peer = await classic.createPeerMapping(8081, '198.51.100.1', 443, Protocol.TCP, 600);
  console.log(peer.peerIP, peer.peerPort);
  await classic.deleteMapping(8080);
  await classic.close();

  // The full API.
  const found: Discovered = await discover({ candidates: [server.address] });
  const client = new Client(found.server, { listenAnnounce: false, deadline: 5000 });
  client.on('renewed', (m: Mapping) => console.log('renewed', m.externalPort));
  client.on('lost', (m, err) => console.log('lost', m.id, err.code));
  client.on('ipChanged', (oldAddress, newAddress) => console.log(oldAddress, '->', newAddress));
  client.on('serverRestarted', (epoch) => console.log('restarted at epoch', epoch));
  const ac = new AbortController();
  const m = await client.map(9000, {
    protocol: 'udp',
    lifetime: 600,
    preferFailure: false,
    filters: [{ remoteAddress: '198.51.100.0', prefixLength: 24 }],
    signal: ac.signal,
  });
  console.log(m.externalAddress, m.externalPort, m.expiresAt.toISOString(), Option.FILTER);
  const epoch: number = await client.announce();
  const ext: string = await client.externalAddress();
  console.log(epoch, ext, await client.gatewayAddress(), await client.internalAddress());
  try {
    server.forceResult('NO_RESOURCES', 30);
    await client.map({ internalPort: 9001 });
  } catch (e) {
    if (e instanceof PCPError) {
      const code: ErrorCode = e.code;
      console.log(code, ERROR_CODES.includes(code));
    }
  } finally {
    server.forceResult(null);
  }
  await m.delete();
  await client.close();
  server.stop();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
