// `npm run build`: compile every contract and print code hashes and sizes.
import { compile } from './compile.js';
for (const name of process.argv.slice(2).length ? process.argv.slice(2) : ['root', 'proxy', 'client', 'worker']) {
  try {
    const c = await compile(name);
    console.log(`${name}: hash ${c.hash} (${c.code.toBoc().length} bytes)`);
  } catch (e) {
    console.error(e.message);
    process.exitCode = 1;
  }
}
