// Renders templates/*.json for one environment with config/<environment>.json into dist/<environment>/.
// Plain Node.js, no dependencies: it runs inside the build, locally or on a CodeBuild standard image.

const fs = require('node:fs');
const path = require('node:path');

const environment = process.argv[2];
if (!environment || !/^[a-z][a-z0-9-]*$/.test(environment)) {
  console.error(`usage: render.js <environment> (got ${JSON.stringify(environment)})`);
  process.exit(2);
}
const root = path.resolve(__dirname, '..');
const settingsFile = path.join(root, 'config', `${environment}.json`);
if (!fs.existsSync(settingsFile)) {
  console.error(
    `no settings for ${environment}: ${path.relative(root, settingsFile)} is missing from the config repository`,
  );
  process.exit(1);
}
const settings = JSON.parse(fs.readFileSync(settingsFile, 'utf8'));
const outDir = path.join(root, 'dist', environment);
fs.mkdirSync(outDir, { recursive: true });

for (const file of fs
  .readdirSync(path.join(root, 'templates'))
  .filter((f) => f.endsWith('.json'))
  .sort()) {
  const text = fs.readFileSync(path.join(root, 'templates', file), 'utf8');
  const rendered = text.replace(/\{\{(\w+)\}\}/g, (_, key) => {
    if (!(key in settings)) throw new Error(`${file}: {{${key}}} has no value in ${environment}.json`);
    return String(settings[key]);
  });
  JSON.parse(rendered); // a template that does not render to JSON fails the build here, not at deploy
  fs.writeFileSync(path.join(outDir, file), rendered);
  console.log(`rendered ${file} for ${environment}`);
}
