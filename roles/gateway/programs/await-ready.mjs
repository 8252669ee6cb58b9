// ExecStartPost of clawlan-gateway: wait until the gateway's /readyz answers 200.
// Gives up at once if the gateway process (systemd's $MAINPID) has died.
const url = process.argv[2];
const deadline = Date.now() + 1000 * Number(process.env.READY_TIMEOUT_S ?? 280);
let last = "no answer yet";
for (;;) {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (response.ok) process.exit(0);
    last = `HTTP ${response.status}`;
  } catch (error) {
    last = error.cause?.code ?? error.message;
  }
  try {
    process.kill(Number(process.env.MAINPID ?? process.pid), 0);
  } catch {
    console.error(`gateway exited before ${url} answered: ${last}`);
    process.exit(1);
  }
  if (Date.now() > deadline) {
    console.error(`gateway not ready at ${url}: ${last}`);
    process.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
}
