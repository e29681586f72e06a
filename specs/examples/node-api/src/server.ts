import express, { Request, Response } from "express";

const port = Number(process.env.PORT ?? 3000);
const started = Date.now();

export const app = express();
app.disable("x-powered-by");
app.use(express.json());

app.get("/health", (_req: Request, res: Response) => {
  res.json({ status: "ok", uptime_ms: Date.now() - started });
});

app.get("/hello/:name", (req: Request, res: Response) => {
  res.json({ greeting: `hello, ${req.params.name}` });
});

if (require.main === module) {
  const server = app.listen(port, () => {
    console.log(`node-api listening on :${port}`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
