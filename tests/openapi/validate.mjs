// validate.mjs - checks real imgmeta answers against openapi.yaml.
//
//   node validate.mjs OPENAPI.yaml CASES.tsv
//
// Each line of CASES.tsv: PATH-TEMPLATE <TAB> METHOD <TAB> HEADERS-FILE <TAB> BODY-FILE
// (PATH-TEMPLATE may instead be "#/components/responses/NAME": the answer
// must match that reusable response, for routes and methods no operation has)
// (HEADERS-FILE as `curl -D` writes it: status line, then headers). For each
// answer it checks that the operation declares the status, that the
// Content-Type is one the response declares, that the body validates against
// that media type's schema (JSON Schema 2020-12, ajv), and that every header
// the response declares is present when required and valid when present.
// Prints one line per case; exits 1 when any case fails.
import fs from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import YAML from "yaml";

const [specFile, casesFile] = process.argv.slice(2);
if (!specFile || !casesFile) {
  console.error("usage: node validate.mjs OPENAPI.yaml CASES.tsv");
  process.exit(2);
}
const spec = YAML.parse(fs.readFileSync(specFile, "utf8"));
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(spec, "openapi");

const esc = (s) => s.replace(/~/g, "~0").replace(/\//g, "~1");

// Follows a local $ref ("#/components/...") to its object and pointer.
function deref(node, pointer) {
  while (node && node.$ref) {
    pointer = node.$ref;
    node = pointer
      .slice(2)
      .split("/")
      .reduce((o, k) => o?.[k.replace(/~1/g, "/").replace(/~0/g, "~")], spec);
  }
  return [node, pointer];
}

function parseHeaders(text) {
  const blocks = text.split(/\r?\n\r?\n/).filter((b) => /^HTTP\//.test(b));
  const lines = (blocks.at(-1) || "").split(/\r?\n/);
  const status = lines[0].split(" ")[1];
  const headers = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status, headers };
}

function checkHeaders(resp, respPointer, headers, problems) {
  for (const [name, decl] of Object.entries(resp.headers || {})) {
    const [h, hPointer] = deref(decl, `${respPointer}/headers/${esc(name)}`);
    const value = headers[name.toLowerCase()];
    if (value === undefined) {
      if (h.required) problems.push(`missing required header ${name}`);
      continue;
    }
    if (!h.schema) continue;
    const [hs] = deref(h.schema, `${hPointer}/schema`);
    const typed = hs.type === "integer" && /^-?\d+$/.test(value) ? Number(value) : value;
    const validate = ajv.getSchema(`openapi#${hPointer.slice(1)}/schema`);
    if (validate && !validate(typed))
      problems.push(`header ${name}: ${value}: ${ajv.errorsText(validate.errors)}`);
  }
}

function checkCase(template, method, headersFile, bodyFile) {
  const problems = [];
  const { status, headers } = parseHeaders(fs.readFileSync(headersFile, "utf8"));
  let declared, basePointer;
  if (template.startsWith("#/")) {
    // An answer no operation can declare (unknown route, other methods): the
    // reusable response it must match, e.g. #/x-unrouted-responses/NoSuchRoute.
    declared = { $ref: template };
    basePointer = template;
  } else {
    const op = spec.paths?.[template]?.[method.toLowerCase()];
    if (!op) return [status, [`no operation ${method} ${template} in the spec`]];
    declared = op.responses?.[status] ?? op.responses?.default;
    if (!declared) return [status, [`status ${status} not declared for ${method} ${template}`]];
    basePointer = `#/paths/${esc(template)}/${method.toLowerCase()}/responses/${status}`;
  }
  const [resp, respPointer] = deref(declared, basePointer);
  checkHeaders(resp, respPointer, headers, problems);
  if (method === "HEAD" || status === "304") return [status, problems];
  const ctype = (headers["content-type"] || "").split(";")[0].trim();
  const media = resp.content?.[ctype];
  if (!media) {
    if (resp.content || ctype)
      problems.push(`Content-Type '${headers["content-type"]}' not declared`);
    return [status, problems];
  }
  const body = fs.readFileSync(bodyFile, "utf8");
  let value = body;
  if (ctype === "application/json") {
    try {
      value = JSON.parse(body);
    } catch (e) {
      problems.push(`body is not JSON: ${e.message}`);
      return [status, problems];
    }
  }
  const schemaPointer = `${respPointer}/content/${esc(ctype)}/schema`;
  const validate = media.schema ? ajv.getSchema(`openapi#${schemaPointer.slice(1)}`) : null;
  if (validate && !validate(value))
    problems.push(`body: ${ajv.errorsText(validate.errors, { separator: "; " })}`);
  return [status, problems];
}

let failed = 0;
const lines = fs.readFileSync(casesFile, "utf8").split("\n").filter((l) => l.trim());
for (const line of lines) {
  const [template, method, headersFile, bodyFile] = line.split("\t");
  let status = "?", problems;
  try {
    [status, problems] = checkCase(template, method, headersFile, bodyFile);
  } catch (e) {
    problems = [`cannot check: ${e.message}`];
  }
  if (problems.length) {
    failed++;
    console.log(`FAIL ${method} ${template} ${status} (${bodyFile}): ${problems.join(" | ")}`);
  } else {
    console.log(`ok   ${method} ${template} ${status} (${bodyFile})`);
  }
}
console.log(`${lines.length - failed} valid, ${failed} invalid`);
process.exit(failed ? 1 : 0);
