// Bundle js/src into src/nbtrain/static (committed so `pip install` needs no Node).
// `node build.mjs --check` rebuilds in memory and fails if the committed bundle differs.
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(here, "../src/nbtrain/static");
const check = process.argv.includes("--check");

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: {
    form: "src/form.js",
    dashboard: "src/dashboard.js",
    viewer: "src/viewer.js",
    browser: "src/browser.js",
    "form-style": "src/form.css",
    "dashboard-style": "src/dashboard.css",
    "viewer-style": "src/viewer.css",
    "browser-style": "src/browser.css",
  },
  bundle: true,
  format: "esm",
  target: ["es2020"],
  minify: true,
  legalComments: "eof",
  charset: "utf8",
  outdir,
  write: false,
  logLevel: "warning",
});

// CSS entry names carry a "-style" suffix only to keep them apart from the JS entries.
const files = result.outputFiles.map((f) => ({
  path: f.path.replace(/-style\.css$/, ".css"),
  contents: f.contents,
}));

if (check) {
  const stale = [];
  for (const f of files) {
    let old = null;
    try {
      old = await readFile(f.path);
    } catch {
      old = null;
    }
    if (old === null || Buffer.compare(old, Buffer.from(f.contents)) !== 0) stale.push(relative(here, f.path));
  }
  if (stale.length) {
    console.error(`bundle out of date (run npm run build and commit): ${stale.join(", ")}`);
    process.exit(1);
  }
  console.log(`bundle up to date: ${files.length} files`);
} else {
  await mkdir(outdir, { recursive: true });
  for (const f of files) await writeFile(f.path, f.contents);
  console.log(files.map((f) => `${relative(here, f.path)} ${f.contents.length} bytes`).join("\n"));
}
