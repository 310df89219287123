// An independent client with no proto files: discovers the collector's
// services through server reflection (v1alpha) over its UNIX socket, builds
// the Query client from the downloaded descriptors, and calls it.
//   node reflect.js SOCKET list
//   node reflect.js SOCKET call METHOD JSON_REQUEST
// Prints JSON on stdout; a gRPC error as {"error": {"code": N, "details": S}}.
'use strict';
const grpc = require('@grpc/grpc-js');
const { GrpcReflection } = require('grpc-js-reflection-client');

async function main() {
  const [socket, what, method, request] = process.argv.slice(2);
  const address = `unix:${socket}`;
  const creds = grpc.credentials.createInsecure();
  const reflection = new GrpcReflection(address, creds);
  if (what === 'list') {
    console.log(JSON.stringify(await reflection.listServices()));
    return;
  }
  const descriptor = await reflection.getDescriptorBySymbol('netvigil.v1.Query');
  const definition = descriptor.getPackageDefinition({
    keepCase: false, longs: String, enums: String, defaults: false, oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition);
  const client = new pkg.netvigil.v1.Query(address, creds);
  const req = JSON.parse(request || '{}');
  await new Promise((resolve) => {
    client[method](req, { deadline: Date.now() + 20000 }, (err, resp) => {
      if (err) {
        console.log(JSON.stringify({ error: { code: err.code, details: err.details } }));
      } else {
        console.log(JSON.stringify(resp));
      }
      client.close();
      resolve();
    });
  });
}

main().catch((e) => {
  console.error(`reflect.js: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
