// MCP test client: the official TypeScript SDK's Client over stdio, spawning
// the command given in the plan (argv[2], JSON), listing tools and
// resources, calling each planned tool, and printing what it got as JSON.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const plan = JSON.parse(process.argv[2]);
const transport = new StdioClientTransport({ command: plan.command, args: plan.args, stderr: "inherit" });
const client = new Client({ name: "meshfs-test", version: "1.0.0" });
await client.connect(transport);
const out = { server: client.getServerVersion(), tools: [], resources: [], results: [], reads: [] };
out.tools = (await client.listTools()).tools.map((t) => t.name);
out.resources = (await client.listResources()).resources.map((r) => r.uri);
for (const uri of plan.read || []) {
  try {
    const r = await client.readResource({ uri });
    out.reads.push({ uri, text: r.contents[0].text });
  } catch (e) {
    out.reads.push({ uri, error: String(e.message || e) });
  }
}
for (const call of plan.calls || []) {
  try {
    const r = await client.callTool({ name: call.name, arguments: call.arguments });
    out.results.push({ name: call.name, isError: !!r.isError, text: r.content.map((c) => c.text).join("\n"),
                       structured: r.structuredContent ?? null });
  } catch (e) {
    out.results.push({ name: call.name, protocolError: String(e.message || e) });
  }
}
await client.close();
process.stdout.write(JSON.stringify(out));
