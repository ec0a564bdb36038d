// Apollo Client 4 with its own PersistedQueryLink (hashed GETs), as a mobile app would use it.
// Runs one query from two fresh clients (no shared cache) and prints what went over the wire:
// the first client's hash is unknown (PersistedQueryNotFound, then the text by POST), the
// second's is found. Usage: node apq.mjs URL TOKEN
import { createHash } from "node:crypto";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";

const [url, token] = process.argv.slice(2);
const wire = [];

async function loggingFetch(input, init) {
  const target = new URL(typeof input === "string" ? input : input.url);
  const body = init?.body ? JSON.parse(init.body) : null;
  const extensions = body?.extensions ?? JSON.parse(target.searchParams.get("extensions") ?? "null");
  const response = await fetch(input, init);
  const text = await response.clone().text();
  wire.push({
    method: init?.method ?? "GET",
    sentQuery: Boolean(body?.query ?? target.searchParams.get("query")),
    sentHash: extensions?.persistedQuery?.sha256Hash ?? null,
    status: response.status,
    contentType: response.headers.get("content-type"),
    errorCodes: (JSON.parse(text).errors ?? []).map((e) => e.extensions?.code ?? e.message),
  });
  return response;
}

function client() {
  const persisted = new PersistedQueryLink({
    sha256: (text) => createHash("sha256").update(text).digest("hex"),
    useGETForHashedQueries: true,
  });
  const http = new HttpLink({
    uri: url,
    fetch: loggingFetch,
    headers: { authorization: `Bearer ${token}` },
  });
  return new ApolloClient({ link: persisted.concat(http), cache: new InMemoryCache() });
}

const QUERY = gql`
  query MyWallets {
    me {
      id
      email
      wallets {
        id
        currency {
          code
        }
        balance {
          amount
          currency
        }
      }
    }
  }
`;

const results = [];
for (let i = 0; i < 2; i++) {
  const { data, error } = await client().query({ query: QUERY, fetchPolicy: "network-only" });
  results.push({ data: data ?? null, error: error ? String(error) : null });
}
console.log(JSON.stringify({ results, wire }));
