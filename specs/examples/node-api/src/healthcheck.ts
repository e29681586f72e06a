import http from "node:http";

// Exit 0 when GET /health answers 200 within the timeout, else 1.
const port = Number(process.env.PORT ?? 3000);
const req = http.get(
  { host: "127.0.0.1", port, path: "/health", timeout: 2000 },
  (res) => {
    res.resume();
    process.exit(res.statusCode === 200 ? 0 : 1);
  },
);
req.on("timeout", () => {
  req.destroy();
  process.exit(1);
});
req.on("error", () => process.exit(1));
