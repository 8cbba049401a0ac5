// duck.mjs - runs SQL statements with DuckDB (@duckdb/node-api) and prints
// the last one's rows as JSON: the tests' Parquet writer and reader.
//   node duck.mjs 'SQL1' ['SQL2' ...]
import { DuckDBInstance } from '@duckdb/node-api';

const db = await DuckDBInstance.create(':memory:');
const con = await db.connect();
let rows = [];
for (const sql of process.argv.slice(2)) {
  const r = await con.runAndReadAll(sql);
  rows = r.getRowObjectsJson();
}
console.log(JSON.stringify(rows));
