// graphql-http's server audit (the GraphQL-over-HTTP spec's MUST and SHOULD) against a URL.
// Prints one JSON line: [{id, name, status, reason}], status "ok", "warn" (SHOULD) or "error".
import { serverAudits } from "graphql-http";

const url = process.argv[2];
const results = [];
for (const audit of serverAudits({ url, fetchFn: fetch })) {
  const result = await audit.fn();
  results.push({ id: audit.id, name: audit.name, status: result.status, reason: result.reason });
}
console.log(JSON.stringify(results));
