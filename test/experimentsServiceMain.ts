/** `start` as its own process for the kill test: prints one ready line with the URL, then serves until killed. */
import { runService } from '../src/service/runService.js';

const service = await runService('start', {}, process.env);
process.stdout.write(`\nEXPERIMENTS-SERVICE-READY ${JSON.stringify({ url: service.url, pid: process.pid })}\n`);
