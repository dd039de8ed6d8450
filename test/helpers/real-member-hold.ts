// Starts a real member, prints its control plane's directory, and waits to be killed:
// the process-hygiene test kills it and looks for what is left.
import { RealMember } from '../../src/localfed/real-member.ts';

const m = await RealMember.create({ name: 'hold', host: '127.0.0.1' });
await m.start();
process.stdout.write(`${m.controlPlane?.dir}\n`);
setInterval(() => {}, 60_000);
