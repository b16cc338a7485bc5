// Cloacina's web UI: plain JS over the HTTP API (/api/v1). The API key is kept in sessionStorage and
// sent as `Authorization: Bearer KEY`; every refusal shows the API's own `error` text.
"use strict";

const KEY = "cloacina.apiKey";
const ENDED = new Set(["completed", "failed", "cancelled"]);
const main = document.getElementById("main");
let timer = null; // the current page's refresh (live status), stopped on every navigation
let shown = ""; // the JSON last drawn by a refreshing page: redraw only on change
let pending = ""; // a message for the next page drawn (why the user was logged out)

// -- helpers --------------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c);
  return el;
}

function status(s) {
  return h("span", { class: `status status-${s}`, "data-status": s, text: s });
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function flash(message, kind) {
  const box = document.getElementById("flash");
  box.textContent = message;
  box.className = kind || "";
  box.hidden = !message;
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body, headers) {
  const opts = { method, headers: { ...(headers || {}) } };
  const key = sessionStorage.getItem(KEY);
  if (key) opts.headers.Authorization = `Bearer ${key}`;
  if (body instanceof Blob || body instanceof ArrayBuffer) opts.body = body;
  else if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (_e) {
    data = null;
  }
  if (!r.ok) {
    const message = (data && (data.error || data.detail)) || text || `${r.status} ${r.statusText}`;
    throw new ApiError(r.status, message);
  }
  return data;
}

// Run an action from a button: errors are shown, a 401 logs out, `then` runs on success.
async function act(fn, then) {
  flash("");
  try {
    const out = await fn();
    if (then) await then(out);
    return out;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return logout(e.message);
    flash(e.message);
    return undefined;
  }
}

function page(title, ...children) {
  main.replaceChildren(h("h1", { text: title }), ...children);
}

function every(ms, fn) {
  const tick = async () => {
    try {
      await fn();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return logout(e.message);
      flash(e.message);
    }
  };
  tick();
  timer = setInterval(tick, ms);
}

// -- login ----------------------------------------------------------------------------------------

function logout(message) {
  sessionStorage.removeItem(KEY);
  pending = message || "";
  if (location.hash === "#/login") route();
  else location.hash = "#/login";
}

function loginPage() {
  document.getElementById("nav").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  const input = h("input", { id: "api-key", type: "password", autocomplete: "off", placeholder: "API key" });
  const form = h(
    "form",
    {
      class: "card login",
      onsubmit: async (ev) => {
        ev.preventDefault();
        sessionStorage.setItem(KEY, input.value.trim());
        try {
          await api("GET", "/api/v1/whoami");
        } catch (e) {
          sessionStorage.removeItem(KEY);
          flash(e.message);
          return;
        }
        flash("");
        location.hash = "#/packages";
      },
    },
    h("label", { for: "api-key", text: "API key (cloacina-ctl api-keys create --tenant T --role read|write|admin)" }),
    input,
    h("button", { class: "primary", type: "submit", text: "Log in" }),
  );
  page("Log in", form);
}

// -- packages -------------------------------------------------------------------------------------

async function packagesPage() {
  const file = h("input", { id: "archive", type: "file", accept: ".cloacina" });
  const upload = h("button", {
    class: "primary",
    id: "upload",
    text: "Upload",
    onclick: () =>
      act(
        async () => {
          const f = file.files[0];
          if (!f) throw new Error("Choose a .cloacina archive first.");
          const q = new URLSearchParams({ filename: f.name });
          return api("POST", `/api/v1/packages?${q}`, f, { "Content-Type": "application/octet-stream" });
        },
        async (r) => {
          await packagesPage();
          flash(`${r.name} ${r.version}: ${r.status}${r.active ? " (active)" : ""}`, "info");
        },
      ),
  });
  const list = h("div", { id: "packages" });
  page("Packages", h("section", { class: "card" }, h("div", { class: "row" }, file, upload)), list);
  const data = await act(() => api("GET", "/api/v1/packages"));
  if (!data) return;
  if (!data.packages.length) list.append(h("p", { class: "muted", text: "No packages registered yet." }));
  for (const p of data.packages) {
    const detail = await act(() => api("GET", `/api/v1/packages/${encodeURIComponent(p.name)}`));
    if (detail) list.append(packageCard(detail));
  }
}

function packageCard(p) {
  const order = p.versions.map((v) => v.version);
  const activeAt = order.indexOf(p.active_version);
  const rows = p.versions.map((v, i) => {
    const label = activeAt >= 0 && i < activeAt ? "Roll back" : "Activate";
    const go = () =>
      act(
        () => api("POST", `/api/v1/packages/${encodeURIComponent(p.name)}/versions/${encodeURIComponent(v.version)}/activate`),
        async (r) => {
          await packagesPage();
          flash(`${r.name}: active version ${r.active_version} (was ${r.previous || "none"})`, "info");
        },
      );
    return h(
      "tr",
      { "data-version": v.version },
      h("td", {}, h("code", { text: v.version })),
      h("td", {}, v.active ? h("strong", { text: "active" }) : ""),
      h("td", { text: v.workflows.map((w) => w.name).join(", ") }),
      h("td", { text: when(v.registered_at) }),
      h("td", { text: String(v.running_executions) }),
      h("td", {}, v.active ? "" : h("button", { onclick: go, text: label })),
    );
  });
  return h(
    "section",
    { class: "card package", "data-package": p.name },
    h("h2", { text: `${p.name}` }, h("span", { class: "muted", text: `  active: ${p.active_version || "none"}` })),
    h(
      "table",
      {},
      h("tr", {}, ...["Version", "", "Workflows", "Registered", "Running", ""].map((t) => h("th", { text: t }))),
      rows,
    ),
  );
}

// -- workflows ------------------------------------------------------------------------------------

// The DAG as SVG: each task in the column of its dependency depth, edges from dependency to dependent.
function dag(graph) {
  const depth = {};
  const deps = Object.fromEntries(graph.map((n) => [n.task_id, n.dependencies]));
  const of = (id, seen) => {
    if (depth[id] !== undefined) return depth[id];
    if (seen.has(id)) return 0;
    seen.add(id);
    const d = Math.max(-1, ...(deps[id] || []).filter((x) => x in deps).map((x) => of(x, seen))) + 1;
    depth[id] = d;
    return d;
  };
  graph.forEach((n) => of(n.task_id, new Set()));
  const columns = [];
  for (const n of graph) (columns[depth[n.task_id]] ||= []).push(n.task_id);
  const W = 150, H = 30, GX = 60, GY = 16, pos = {};
  columns.forEach((col, x) => col.forEach((id, y) => (pos[id] = { x: 10 + x * (W + GX), y: 10 + y * (H + GY) })));
  const width = 20 + columns.length * (W + GX) - GX;
  const height = 20 + Math.max(1, ...columns.map((c) => c.length)) * (H + GY) - GY;
  const ns = "http://www.w3.org/2000/svg";
  const s = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text) el.textContent = text;
    return el;
  };
  const svg = s("svg", { class: "dag", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  const marker = s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
  marker.append(s("path", { d: "M0,0 L10,5 L0,10 z", class: "head" }));
  const defs = s("defs", {});
  defs.append(marker);
  svg.append(defs);
  for (const n of graph)
    for (const d of n.dependencies.filter((x) => pos[x])) {
      const a = pos[d], b = pos[n.task_id];
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
      svg.append(s("path", { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)" }));
    }
  for (const n of graph) {
    const p = pos[n.task_id];
    const g = s("g", { "data-task": n.task_id });
    g.append(s("rect", { x: p.x, y: p.y, width: W, height: H, rx: 5 }));
    const label = n.task_id.length > 20 ? `${n.task_id.slice(0, 19)}…` : n.task_id;
    g.append(s("text", { x: p.x + 8, y: p.y + H / 2 + 4 }, label));
    g.append(s("title", {}, n.task_id));
    svg.append(g);
  }
  return svg;
}

async function workflowsPage() {
  page("Workflows");
  const data = await act(() => api("GET", "/api/v1/workflows"));
  if (!data) return;
  if (!data.workflows.length) main.append(h("p", { class: "muted", text: "No workflows." }));
  for (const w of data.workflows) {
    const context = h("textarea", { rows: 2, "aria-label": `context for ${w.namespace}`, class: "context" });
    context.value = "{}";
    const run = () =>
      act(
        () => {
          let parsed;
          try {
            parsed = JSON.parse(context.value || "{}");
          } catch (e) {
            throw new Error(`The context is not JSON: ${e.message}`);
          }
          return api("POST", "/api/v1/executions", { workflow: w.namespace, context: parsed });
        },
        (r) => {
          location.hash = `#/executions/${r.execution_id}`;
        },
      );
    main.append(
      h(
        "section",
        { class: "card workflow", "data-workflow": w.namespace },
        h("h2", { text: w.namespace }),
        h("p", { class: "muted", text: [w.description, `${w.task_count} tasks`, w.source.kind, w.source.version].filter(Boolean).join(" · ") }),
        dag(w.graph),
        h("label", { text: "Context (JSON)" }),
        context,
        h("div", { class: "row" }, h("button", { class: "primary run", onclick: run, text: "Run" })),
      ),
    );
  }
}

// -- schedules and triggers -----------------------------------------------------------------------

async function schedulesPage() {
  page("Schedules & triggers");
  const [sched, trig] = await Promise.all([
    act(() => api("GET", "/api/v1/schedules")),
    act(() => api("GET", "/api/v1/triggers")),
  ]);
  if (!sched || !trig) return;
  const enc = encodeURIComponent;
  const toggle = (path, what) => act(() => api("POST", path), async () => {
    await schedulesPage();
    flash(what, "info");
  });
  main.append(h("h2", { text: "Schedules" }));
  main.append(
    sched.schedules.length
      ? h(
          "table",
          { id: "schedules" },
          h("tr", {}, ...["Workflow", "Name", "Cron", "Next", "Last", "", ""].map((t) => h("th", { text: t }))),
          sched.schedules.map((s) => {
            const q = `?name=${enc(s.name)}`;
            const base = `/api/v1/schedules/${enc(s.namespace)}`;
            return h(
              "tr",
              {},
              h("td", { text: s.workflow }),
              h("td", { text: s.name }),
              h("td", {}, h("code", { text: `${s.cron} (${s.timezone})` })),
              h("td", { text: s.paused ? "paused" : when(s.next_fire && s.next_fire.utc) }),
              h("td", {}, s.last_fire && s.last_fire.execution_id
                ? h("a", { href: `#/executions/${s.last_fire.execution_id}`, text: when(s.last_fire.utc) }) : "—"),
              h("td", {}, s.paused
                ? h("button", { text: "Resume", onclick: () => toggle(`${base}/resume${q}`, `${s.name}: resumed`) })
                : h("button", { text: "Pause", onclick: () => toggle(`${base}/pause${q}`, `${s.name}: paused`) })),
            );
          }),
        )
      : h("p", { class: "muted", text: "No schedules." }),
  );
  main.append(h("h2", { text: "Triggers" }));
  main.append(
    trig.triggers.length
      ? h(
          "table",
          { id: "triggers" },
          h("tr", {}, ...["Trigger", "Workflows", "Every", "Last fire", "Last error", "", ""].map((t) => h("th", { text: t }))),
          trig.triggers.map((t) => {
            const base = `/api/v1/triggers/${enc(t.trigger)}`;
            const fire = () => act(() => api("POST", `${base}/fire`, { context: {} }), async (r) => {
              await schedulesPage();
              flash(`${r.trigger} fired: ${r.executions.map((e) => e.execution_id).join(", ")}`, "info");
            });
            return h(
              "tr",
              {},
              h("td", {}, h("code", { text: t.trigger })),
              h("td", { text: t.workflows.join(", ") }),
              h("td", { text: `${t.poll_interval_s}s` }),
              h("td", { text: t.last_fire ? when(t.last_fire.utc) : "—" }),
              h("td", { text: t.last_error ? t.last_error.error : "" }),
              h("td", {}, t.paused
                ? h("button", { text: "Resume", onclick: () => toggle(`${base}/resume`, `${t.trigger}: resumed`) })
                : h("button", { text: "Pause", onclick: () => toggle(`${base}/pause`, `${t.trigger}: paused`) })),
              h("td", {}, h("button", { text: "Fire", onclick: fire })),
            );
          }),
        )
      : h("p", { class: "muted", text: "No triggers." }),
  );
}

// -- trust ----------------------------------------------------------------------------------------

// The tenant's signature policy and trusted keys; adding, revoking and the policy need an admin key
// (any other key is refused by the API, and its message shows).
async function trustPage() {
  page("Trust");
  const [me, trust] = await Promise.all([act(() => api("GET", "/api/v1/whoami")), act(() => api("GET", "/api/v1/trust?all=true"))]);
  if (!me || !trust) return;
  const again = (message) => async () => {
    await trustPage();
    flash(message, "info");
  };
  const policyPath = `/api/v1/tenants/${encodeURIComponent(me.tenant)}/policy`;
  const required = trust.require_signatures;
  main.append(
    h(
      "section",
      { class: "card", id: "policy", "data-required": String(required) },
      h("p", { text: `Tenant ${me.tenant}: signatures by a trusted key ${required ? "are required" : "are not required"}.` }),
      h("button", {
        id: "toggle-policy",
        text: required ? "Stop requiring signatures" : "Require signatures",
        onclick: () =>
          act(() => api("PUT", policyPath, { require_signatures: !required }), (r) =>
            again(r.require_signatures ? "Signatures are now required" : "Signatures are no longer required")(),
          ),
      }),
    ),
  );
  main.append(h("h2", { text: "Trusted keys" }));
  main.append(
    trust.keys.length
      ? h(
          "table",
          { id: "trusted-keys" },
          h("tr", {}, ...["Name", "Fingerprint", "Added", "Revoked", ""].map((t) => h("th", { text: t }))),
          trust.keys.map((k) =>
            h(
              "tr",
              { "data-key": k.name, "data-trusted": String(k.trusted) },
              h("td", { text: k.name }),
              h("td", {}, h("code", { text: k.fingerprint })),
              h("td", { text: when(k.added_at) }),
              h("td", { text: k.revoked_at ? when(k.revoked_at) : "—" }),
              h("td", {}, k.trusted
                ? h("button", {
                    text: "Revoke",
                    onclick: () => act(() => api("DELETE", `/api/v1/trust/${encodeURIComponent(k.name)}`), (r) =>
                      again(`Revoked ${r.key.name}; versions it signed: ${r.signed_versions.map((v) => `${v.name} ${v.version}`).join(", ") || "none"}`)(),
                    ),
                  })
                : null),
            ),
          ),
        )
      : h("p", { class: "muted", text: "No trusted keys yet." }),
  );
  const name = h("input", { id: "trust-name", placeholder: "name" });
  const key = h("textarea", { id: "trust-key", rows: 4, placeholder: "public key: PEM, its one-line base64 body, or ssh-ed25519 …" });
  const add = h("button", {
    class: "primary",
    id: "trust-add",
    text: "Trust this key",
    onclick: () =>
      act(() => api("POST", "/api/v1/trust", { name: name.value.trim(), public_key: key.value }), (r) =>
        again(`${r.name}: ${r.status} (${r.fingerprint.slice(0, 16)})`)(),
      ),
  });
  main.append(h("h2", { text: "Trust a key" }), h("section", { class: "card" }, h("div", { class: "row" }, name), key, add));
}

// -- executions -----------------------------------------------------------------------------------

function executionsPage() {
  const table = h("div", { id: "executions" });
  page("Executions", h("p", { class: "muted", text: "Live: refreshed every second." }), table);
  every(1000, async () => {
    const data = await api("GET", "/api/v1/executions?limit=50");
    const json = JSON.stringify(data);
    if (json === shown) return;
    shown = json;
    table.replaceChildren(
      h(
        "table",
        {},
        h("tr", {}, ...["Execution", "Workflow", "Version", "Status", "Created", "Duration", "Error"].map((t) => h("th", { text: t }))),
        data.executions.map((e) =>
          h(
            "tr",
            { "data-execution": e.id },
            h("td", {}, h("a", { href: `#/executions/${e.id}` }, h("code", { text: e.id.slice(0, 12) }))),
            h("td", { text: e.workflow }),
            h("td", { text: e.package_version || "" }),
            h("td", {}, status(e.status)),
            h("td", { text: when(e.created_at) }),
            h("td", { text: e.duration_s === null ? "" : `${e.duration_s.toFixed(2)}s` }),
            h("td", { text: e.error || "" }),
          ),
        ),
      ),
    );
  });
}

let selectedTask = null;

function executionPage(id) {
  selectedTask = null;
  const body = h("div", { id: "execution" });
  page(`Execution ${id.slice(0, 12)}`, body);
  const path = `/api/v1/executions/${encodeURIComponent(id)}`;
  const draw = (e) => {
    const running = !ENDED.has(e.status);
    const cancel = () => act(() => api("POST", `${path}/cancel`), refresh);
    const retry = () => act(() => api("POST", `${path}/retry`, {}), refresh);
    const rerun = () => act(() => api("POST", `${path}/rerun`), (r) => (location.hash = `#/executions/${r.execution_id}`));
    const tasks = e.tasks.map((t) =>
      h(
        "tr",
        { "data-task": t.task_id, class: t.task_id === selectedTask ? "selected" : null },
        h("td", {}, h("a", { class: "task", onclick: () => {
          selectedTask = t.task_id;
          shown = "";
          refresh();
        }, text: t.task_id })),
        h("td", {}, status(t.status)),
        h("td", { class: "attempts", text: String(t.attempts.length) }),
        h("td", { text: t.duration_s === null ? "" : `${t.duration_s.toFixed(2)}s` }),
        h("td", { text: t.error || "" }),
      ),
    );
    const picked = e.tasks.find((t) => t.task_id === selectedTask);
    body.replaceChildren(
      h(
        "section",
        { class: "card" },
        h("div", { class: "row" },
          h("span", { text: "Status:" }), h("span", { id: "execution-status" }, status(e.status)),
          h("span", { class: "muted", text: `${e.workflow} ${e.package_version || ""}` }),
          h("span", { class: "muted", text: `created ${when(e.created_at)}` }),
          e.rerun_of ? h("a", { href: `#/executions/${e.rerun_of}`, text: "rerun of…" }) : null),
        e.error ? h("pre", { class: "error", text: e.error }) : null,
        h("div", { class: "row" },
          h("button", { id: "cancel", onclick: cancel, disabled: !running, text: "Cancel" }),
          h("button", { id: "retry", onclick: retry, disabled: running || e.status === "completed", text: "Retry failed tasks" }),
          h("button", { id: "rerun", onclick: rerun, disabled: running, text: "Rerun" })),
      ),
      h("h2", { text: "Tasks" }),
      h("table", { id: "tasks" },
        h("tr", {}, ...["Task", "Status", "Attempts", "Duration", "Error"].map((t) => h("th", { text: t }))),
        tasks),
      picked ? taskPanel(picked) : h("p", { class: "muted", text: "Click a task for its attempts, errors and logs." }),
      h("h2", { text: "Context" }),
      h("pre", { text: JSON.stringify(e.final_context || e.context, null, 2) }),
    );
  };
  const refresh = async () => {
    const e = await api("GET", path);
    const json = JSON.stringify(e);
    if (json !== shown) {
      shown = json;
      draw(e);
    }
  };
  every(1000, refresh);
}

function taskPanel(t) {
  return h(
    "section",
    { class: "card", id: "task-panel", "data-task": t.task_id },
    h("h2", { text: `Task ${t.task_id}` }),
    t.attempts.length ? null : h("p", { class: "muted", text: "Not started yet." }),
    t.attempts.map((a) =>
      h(
        "div",
        { class: "attempt", "data-attempt": a.attempt },
        h("h3", {}, `Attempt ${a.attempt} `, status(a.status),
          h("span", { class: "muted", text: ` ${when(a.started_at)}${a.duration_s === null ? "" : `, ${a.duration_s.toFixed(2)}s`}` })),
        a.error ? h("pre", { class: "error", text: a.error }) : null,
        a.traceback ? h("details", {}, h("summary", { text: "Traceback" }), h("pre", { text: a.traceback })) : null,
        h("pre", { class: "log" },
          a.output.length ? a.output.map((l) => h("div", { class: `line-${l.stream}`, text: `${l.level ? `${l.level} ` : ""}${l.text}` }))
            : h("span", { class: "muted", text: "(no output)" }),
          a.output_cut ? h("div", { class: "muted", text: `… ${a.output_cut} lines cut` }) : null),
      ),
    ),
  );
}

// -- routing --------------------------------------------------------------------------------------

async function route() {
  clearInterval(timer);
  timer = null;
  shown = "";
  flash(pending);
  pending = "";
  const hash = location.hash || "#/packages";
  if (!sessionStorage.getItem(KEY)) {
    if (hash !== "#/login") location.hash = "#/login";
    return loginPage();
  }
  document.getElementById("nav").hidden = false;
  document.getElementById("logout").hidden = false;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("current", hash.startsWith(a.getAttribute("href")));
  const [, name, arg] = hash.split("/");
  if (name === "workflows") return workflowsPage();
  if (name === "schedules") return schedulesPage();
  if (name === "trust") return trustPage();
  if (name === "executions" && arg) return executionPage(decodeURIComponent(arg));
  if (name === "executions") return executionsPage();
  if (name === "login") {
    location.hash = "#/packages";
    return undefined;
  }
  return packagesPage();
}

async function whoami() {
  if (!sessionStorage.getItem(KEY)) return;
  try {
    const me = await api("GET", "/api/v1/whoami");
    document.getElementById("who").textContent = `${me.tenant} · ${me.role}${me.name ? ` · ${me.name}` : ""}`;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) logout(e.message);
  }
}

document.getElementById("logout").addEventListener("click", () => logout(""));
window.addEventListener("hashchange", () => {
  whoami();
  route();
});
whoami();
route();
