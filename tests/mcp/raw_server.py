"""A hand-written stdio MCP server that answers the handshake and the listing properly, then a tool call with a
result of the wrong shape (a malformed response), and a second tool call correctly."""

import json
import sys

for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg:
        continue
    method, rid = msg.get("method"), msg["id"]
    if method == "initialize":
        result = {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                  "serverInfo": {"name": "raw", "version": "0"}}
    elif method == "tools/list":
        schema = {"type": "object", "properties": {}}
        result = {"tools": [{"name": "bad", "inputSchema": schema}, {"name": "good", "inputSchema": schema}]}
    elif method == "tools/call" and msg["params"]["name"] == "bad":
        result = {"content": "this should be a list of blocks", "isError": "maybe"}
    elif method == "tools/call":
        result = {"content": [{"type": "text", "text": "fine"}]}
    else:
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": method}}) + "\n")
        sys.stdout.flush()
        continue
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": rid, "result": result}) + "\n")
    sys.stdout.flush()
