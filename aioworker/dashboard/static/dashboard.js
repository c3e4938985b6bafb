// aioworker dashboard: draws each page from the JSON API and redraws it every few seconds.
// Plain browser JavaScript, no build step. Every value from the server goes into the page
// as text (never as HTML).
"use strict";

(function () {
  const body = document.body;
  const PAGE = body.dataset.page;
  const READ_ONLY = body.dataset.readOnly === "1";
  const SHOW_ARGS = body.dataset.showArgs === "1";
  const REFRESH_MS = Number(body.dataset.refreshMs) || 2000;
  const params = new URLSearchParams(location.search);
  const main = document.getElementById("main");
  const statusEl = document.getElementById("status");
  const SVG = "http://www.w3.org/2000/svg";

  // -- small helpers ----------------------------------------------------------------

  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // replaceChildren, leaving out null, undefined and false
  function fill(el, ...children) {
    el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  }

  function s(tag, attrs) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    return el;
  }

  const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));

  function duration(sec) {
    sec = Math.max(0, sec);
    if (sec < 1) return sec.toFixed(1) + "s";
    if (sec < 60) return Math.round(sec) + "s";
    const m = Math.floor(sec / 60);
    if (m < 60) return m + "m" + String(Math.floor(sec % 60)).padStart(2, "0") + "s";
    const hr = Math.floor(m / 60);
    if (hr < 24) return hr + "h" + String(m % 60).padStart(2, "0") + "m";
    return Math.floor(hr / 24) + "d" + String(hr % 24).padStart(2, "0") + "h";
  }

  function when(iso) {
    if (!iso) return h("span", { class: "muted", text: "–" });
    const t = new Date(iso);
    const d = (Date.now() - t.getTime()) / 1000;
    const text = Math.abs(d) < 1 ? "now" : d > 0 ? duration(d) + " ago" : "in " + duration(-d);
    return h("time", { datetime: iso, title: t.toLocaleString() }, text);
  }

  function badge(text, kind) {
    return h("span", { class: "badge " + (kind || text) }, text);
  }

  function link(href, text, cls) {
    return h("a", { href: href, class: cls }, text);
  }

  function jobLink(job) {
    const q = new URLSearchParams({ queue: job.queue, id: job.id });
    const text = job.id.length > 20 ? job.id.slice(0, 18) + "…" : job.id;  // whole id in the title
    return h("a", { href: "job?" + q, class: "mono", title: job.id }, text);
  }

  function argsCell(job) {
    if (job.hidden) return h("span", { class: "muted", title: "start the dashboard with show_args=True to see arguments" }, "hidden");
    const parts = [];
    if (job.args && job.args.length) parts.push(JSON.stringify(job.args));
    if (job.kwargs && Object.keys(job.kwargs).length) parts.push(JSON.stringify(job.kwargs));
    const text = parts.join(" ") || "()";
    return h("code", { class: "args", title: text }, text.length > 80 ? text.slice(0, 77) + "…" : text);
  }

  function setStatus(text, kind) {
    statusEl.textContent = text;
    statusEl.className = "status " + (kind || "");
  }

  let toastBox = null;
  function toast(text, kind) {
    if (!toastBox) toastBox = document.body.appendChild(h("div", { class: "toasts", role: "status" }));
    const t = toastBox.appendChild(h("div", { class: "toast " + (kind || "") }, text));
    setTimeout(() => t.remove(), 4000);
  }

  function qs(obj) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(obj)) if (v !== null && v !== undefined && v !== "") p.set(k, v);
    return p.toString();
  }

  const enc = encodeURIComponent;

  // -- talking to the API ---------------------------------------------------------

  async function api(path) {
    const r = await fetch("api/" + path, { cache: "no-store", headers: { Accept: "application/json" } });
    const data = await r.json().catch(() => ({ error: r.statusText }));
    if (!r.ok) throw Object.assign(new Error(data.error || r.statusText), { status: r.status });
    return data;
  }

  async function act(path, bodyObj, done) {
    try {
      const r = await fetch("api/" + path, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(bodyObj || {}),
      });
      const data = await r.json().catch(() => ({ error: r.statusText }));
      if (!r.ok) throw new Error(data.error || r.statusText);
      if (done) toast(done(data), "ok");
      refreshNow();
      return data;
    } catch (err) {
      toast("Failed: " + err.message, "error");
      return null;
    }
  }

  function button(label, action, opts) {
    if (READ_ONLY) return null;
    opts = opts || {};
    return h("button", {
      type: "button",
      class: "btn " + (opts.kind || ""),
      "data-action": opts.name || label.toLowerCase(),
      title: opts.title,
      onclick: async (ev) => {
        if (opts.confirm && !window.confirm(opts.confirm)) return;
        ev.currentTarget.disabled = true;
        await action();
      },
    }, label);
  }

  // -- charts ---------------------------------------------------------------------

  // A step of 1, 2 or 5 times a power of ten, so that 4 steps cover v.
  function niceStep(v) {
    const raw = Math.max(v, 1e-9) / 4;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
    return 10 * p;
  }

  function lineChart(box, t, series, unit) {
    const width = Math.max(box.clientWidth, 240);
    const height = 150;
    const pad = { l: 44, r: 10, t: 10, b: 22 };
    const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
    // the last 5 minutes, or less while the history is shorter (at least a minute)
    const now = Date.now();
    const span = Math.min(5 * 60 * 1000, Math.max(60 * 1000, t.length ? now - t[0] : 0));
    const x0 = now - span;
    const top = Math.max(0, ...series.flatMap((se) => se.values));
    const step = top > 0 ? niceStep(top) : 1;
    const ticks = Math.max(1, Math.ceil(top / step));
    const ymax = step * ticks;
    const X = (ms) => pad.l + ((ms - x0) / span) * (width - pad.l - pad.r);
    const Y = (v) => pad.t + (1 - v / ymax) * (height - pad.t - pad.b);
    for (let i = 0; i <= ticks; i++) {
      const v = step * i;
      const y = Y(v);
      svg.append(s("line", { x1: pad.l, x2: width - pad.r, y1: y, y2: y, class: "grid" }));
      const label = s("text", { x: pad.l - 6, y: y + 4, class: "axis", "text-anchor": "end" });
      label.textContent = Number(v.toPrecision(6)).toLocaleString("en-US");
      svg.append(label);
    }
    for (const [ms, text] of [[x0, duration(Math.round(span / 1000)) + " ago"], [now, "now"]]) {
      const label = s("text", { x: X(ms), y: height - 6, class: "axis", "text-anchor": ms === now ? "end" : "start" });
      label.textContent = text;
      svg.append(label);
    }
    const gap = Math.max(3 * REFRESH_MS, 5000);
    for (const se of series) {
      let d = "";
      let area = "";
      let start = null;
      let prev = null;
      t.forEach((ms, i) => {
        if (ms < x0) return;
        const x = X(ms);
        const y = Y(se.values[i]);
        if (prev === null || ms - prev > gap) {
          if (start !== null) area += `L${X(prev)},${Y(0)}L${start},${Y(0)}Z`;
          d += `M${x},${y}`;
          area += `M${x},${y}`;
          start = x;
        } else {
          d += `L${x},${y}`;
          area += `L${x},${y}`;
        }
        prev = ms;
      });
      if (start !== null) area += `L${X(prev)},${Y(0)}L${start},${Y(0)}Z`;
      if (se.area && area) svg.append(s("path", { d: area, class: "area " + se.cls }));
      if (d) svg.append(s("path", { d, class: "line " + se.cls }));
    }
    const title = s("title");
    title.textContent = series.map((se) => `${se.name}: ${se.values.length ? se.values[se.values.length - 1] : 0}${unit || ""}`).join(", ");
    svg.append(title);
    fill(box, svg);
  }

  function sparkline(values) {
    const w = 90;
    const hgt = 22;
    const svg = s("svg", { width: w, height: hgt, class: "spark", "aria-hidden": "true" });
    const last = values.slice(-60);
    if (last.length < 2) return svg;
    const max = Math.max(1, ...last);
    const pts = last.map((v, i) => `${(i / (last.length - 1)) * (w - 2) + 1},${hgt - 2 - (v / max) * (hgt - 4)}`);
    svg.append(s("polygon", { points: `1,${hgt - 2} ${pts.join(" ")} ${w - 1},${hgt - 2}`, class: "area ready" }));
    svg.append(s("polyline", { points: pts.join(" "), class: "line ready" }));
    return svg;
  }

  function legend(items) {
    return h("div", { class: "legend" }, items.map(([cls, text]) => h("span", { class: "key " + cls }, text)));
  }

  // -- tables ---------------------------------------------------------------------

  function table(cols, rows, empty) {
    if (!rows.length) return h("p", { class: "empty" }, empty || "Nothing here.");
    return h("div", { class: "table-wrap" },
      h("table", {},
        h("thead", {}, h("tr", {}, cols.map((c) => h("th", { class: c.cls }, c.title)))),
        h("tbody", {}, rows.map((r) => {
          const tr = h("tr", r.attrs || {});
          cols.forEach((c) => tr.append(h("td", { class: c.cls, "data-col": c.key }, c.cell(r.data, tr, cols.length))));
          return [tr, r.after ? r.after(cols.length) : null];
        }))));
  }

  // -- pages ----------------------------------------------------------------------

  let knownQueues = [];

  const pages = {};

  pages.queues = {
    setup() {
      this.cards = h("section", { class: "cards" });
      this.tp = h("div", { class: "chart" });
      this.bl = h("div", { class: "chart" });
      this.list = h("section");
      fill(main,
        this.cards,
        h("section", { class: "charts" },
          h("div", { class: "panel" }, h("h2", {}, "Throughput"), legend([["tp", "jobs finished / s"]]), this.tp),
          h("div", { class: "panel" }, h("h2", {}, "Backlog"), legend([["ready", "ready"], ["running", "running"], ["scheduled", "scheduled"]]), this.bl)),
        h("div", { class: "panel" }, h("h2", {}, "Queues"), this.list));
    },
    async update() {
      const o = await api("overview");
      knownQueues = o.queues.map((q) => q.name);
      const t = o.totals;
      const card = (key, label, value, href, extra) =>
        h(href ? "a" : "div", { class: "card " + key, href, "data-stat": key },
          h("span", { class: "label" }, label), h("span", { class: "value" }, value), extra || null);
      fill(this.cards,
        card("ready", "Ready", fmt(t.ready), "ready"),
        card("scheduled", "Scheduled", fmt(t.scheduled), "scheduled"),
        card("running", "Running", fmt(t.running), "running"),
        card("dead", "Dead", fmt(t.dead), "dead"),
        card("workers", "Workers", fmt(t.workers), "workers"),
        card("rate", "Jobs / s", t.jobs_per_s.toFixed(1), null, h("span", { class: "sub", title: "jobs finished by the live workers since they started" }, fmt(t.jobs_done) + " done")));
      const hist = o.history;
      lineChart(this.tp, hist.t, [{ name: "jobs/s", values: hist.jobs_per_s, cls: "tp", area: true }], " jobs/s");
      lineChart(this.bl, hist.t, [
        { name: "ready", values: hist.ready, cls: "ready", area: true },
        { name: "running", values: hist.running, cls: "running" },
        { name: "scheduled", values: hist.scheduled, cls: "scheduled" },
      ]);
      const count = (state) => (q) => q[state] ? link(`${state}?queue=${enc(q.name)}`, fmt(q[state])) : h("span", { class: "zero" }, "0");
      fill(this.list, table([
        { title: "Queue", key: "name", cell: (q) => h("strong", {}, q.name) },
        { title: "Ready", key: "ready", cls: "num", cell: count("ready") },
        { title: "", key: "trend", cls: "trend", cell: (q) => sparkline((hist.queues[q.name] || { ready: [] }).ready) },
        { title: "Scheduled", key: "scheduled", cls: "num", cell: count("scheduled") },
        { title: "Running", key: "running", cls: "num", cell: count("running") },
        { title: "Dead", key: "dead", cls: "num", cell: count("dead") },
        { title: "State", key: "state", cell: (q) => q.paused ? h("span", {}, badge("paused"), " ", when(q.paused_at)) : badge("active") },
        { title: "", key: "actions", cls: "actions", cell: (q) => q.paused
          ? button("Resume", () => act(`queues/${enc(q.name)}/resume`, {}, () => `Queue ${q.name} resumed`), { kind: "primary" })
          : button("Pause", () => act(`queues/${enc(q.name)}/pause`, {}, () => `Queue ${q.name} paused`), { confirm: `Pause queue ${q.name}? Workers stop starting its jobs.` }) },
      ], o.queues.map((q) => ({ data: q, attrs: { "data-queue": q.name } })), "No queues yet: enqueue a job or start a worker."),
        (o.skipped || []).map((q) => h("p", { class: "muted", "data-skipped": q.name }, `Skipped queue ${JSON.stringify(q.name)}: ${q.reason}`)));
    },
  };

  const expanded = new Set();
  const tracebacks = new Map();

  function jobsPage(state, title) {
    return {
      setup() {
        this.queue = params.get("queue") || "";
        this.offset = Number(params.get("offset")) || 0;
        this.select = h("select", { "aria-label": "Queue", onchange: (ev) => {
          const p = new URLSearchParams(location.search);
          if (ev.target.value) p.set("queue", ev.target.value); else p.delete("queue");
          p.delete("offset");
          location.search = p.toString();
        } });
        this.bulk = h("span", { class: "bulk" });
        this.summary = h("span", { class: "muted" });
        this.list = h("div");
        this.pager = h("div", { class: "pager" });
        fill(main, h("div", { class: "panel" },
          h("div", { class: "toolbar" }, h("h2", {}, title), this.select, this.summary, this.bulk),
          this.list, this.pager));
      },
      async update() {
        const [data, queues] = await Promise.all([
          api("jobs?" + qs({ state, queue: this.queue, offset: this.offset || null, limit: 50 })),
          api("queues"),
        ]);
        knownQueues = queues.queues.map((q) => q.name);
        if (this.select.options.length !== knownQueues.length + 1) {
          fill(this.select, h("option", { value: "" }, "All queues"),
            knownQueues.map((n) => h("option", { value: n, selected: n === this.queue }, n)));
        }
        const shown = data.jobs.length;
        this.summary.textContent = data.total ? `${fmt(data.offset + 1)}–${fmt(data.offset + shown)} of ${fmt(data.total)}` : "";
        this.summary.dataset.total = data.total;
        this.renderBulk(queues.queues, data.total);
        fill(this.list, table(columns(state), data.jobs.map((j) => ({
          data: j, attrs: { "data-job": j.id },
          after: state === "dead" && expanded.has(j.id) ? (span) => tracebackRow(j, span) : null,
        })),
          `No ${state} jobs${this.queue ? " in " + this.queue : ""}.`));
        fill(this.pager);
        if (this.queue && (this.offset > 0 || data.offset + shown < data.total)) {
          const go = (off) => { const p = new URLSearchParams(location.search); p.set("offset", off); location.search = p.toString(); };
          this.pager.append(
            h("button", { class: "btn", type: "button", disabled: this.offset <= 0, onclick: () => go(Math.max(0, this.offset - 50)) }, "‹ Newer"),
            h("button", { class: "btn", type: "button", disabled: data.offset + shown >= data.total, onclick: () => go(this.offset + 50) }, "Older ›"));
        }
      },
      renderBulk(queues, total) {
        fill(this.bulk);
        if (state !== "dead" || READ_ONLY || !total) return;
        const targets = queues.filter((q) => q.dead && (!this.queue || q.name === this.queue)).map((q) => q.name);
        const where = this.queue ? `queue ${this.queue}` : `${targets.length} queue(s)`;
        const each = async (verb, key) => {
          let n = 0;
          for (const q of targets) {
            const r = await act(`dead/${enc(q)}/${verb}`, { all: true });
            if (r) n += r[key];
          }
          toast(`${n} dead job(s) ${verb === "retry" ? "put back to run" : "deleted"}`, "ok");
        };
        this.bulk.append(
          button("Retry all", () => each("retry", "retried"), { name: "retry-all", confirm: `Retry every dead job of ${where}?` }),
          button("Delete all", () => each("delete", "deleted"), { name: "delete-all", kind: "danger", confirm: `Delete every dead job of ${where} for good?` }));
      },
    };
  }

  function cancelButton(j) {
    return button("Cancel", () => act(`jobs/${enc(j.queue)}/${enc(j.id)}/cancel`, {}, (r) => `Job ${j.id}: ${r.outcome}`),
      { confirm: `Cancel job ${j.id}?` });
  }

  // The error in its cell; the traceback opens in a full-width row below the job's row.
  function tracebackRow(j, span) {
    const tb = h("pre", { class: "traceback" }, "loading…");
    const key = j.id + "|" + j.at;  // a job that died again has another traceback
    if (tracebacks.has(key)) tb.textContent = tracebacks.get(key);
    else {
      api(`jobs/${enc(j.queue)}/${enc(j.id)}`).then((d) => {
        tb.textContent = (d.error && d.error.traceback) || "(no traceback recorded)";
        tracebacks.set(key, tb.textContent);
      }, (err) => { tb.textContent = "could not load: " + err.message; });
    }
    return h("tr", { class: "detail", "data-detail": j.id }, h("td", { colspan: span }, tb));
  }

  function errorCell(j, tr, span) {
    const msg = `${j.error_type || "Error"}: ${j.error_message || ""}`;
    const open = expanded.has(j.id);
    return h("button", {
      type: "button", class: "toggle" + (open ? " open" : ""), title: msg,
      "aria-expanded": open ? "true" : "false", "data-action": "traceback",
      onclick: (ev) => {
        const btn = ev.currentTarget;
        const next = tr.nextElementSibling;
        if (expanded.has(j.id)) {
          expanded.delete(j.id);
          if (next && next.dataset.detail === j.id) next.remove();
        } else {
          expanded.add(j.id);
          tr.after(tracebackRow(j, span));
        }
        btn.classList.toggle("open", expanded.has(j.id));
        btn.setAttribute("aria-expanded", expanded.has(j.id) ? "true" : "false");
      },
    }, msg);
  }

  function columns(state) {
    const id = { title: "Job", key: "id", cell: jobLink };
    const task = { title: "Task", key: "task", cell: (j) => j.task || "?" };
    const queue = { title: "Queue", key: "queue", cell: (j) => j.queue };
    const args = { title: "Arguments", key: "args", cell: argsCell };
    const attempts = { title: "Attempts", key: "attempts", cls: "num", cell: (j) => fmt(j.attempts) };
    if (state === "running") {
      return [id, task, queue, { title: "Attempt", key: "attempts", cls: "num", cell: (j) => fmt(j.attempts) },
        { title: "Worker", key: "worker", cell: (j) => h("span", { class: "mono small" }, j.worker || "–") },
        { title: "Lease ends", key: "at", cell: (j) => when(j.at) }, args,
        { title: "", key: "actions", cls: "actions", cell: cancelButton }];
    }
    if (state === "scheduled") {
      return [id, task, queue, { title: "Runs", key: "at", cell: (j) => when(j.at) }, attempts, args,
        { title: "", key: "actions", cls: "actions", cell: cancelButton }];
    }
    if (state === "dead") {
      return [id, task, queue, { title: "Died", key: "at", cell: (j) => when(j.at) }, attempts,
        { title: "Error", key: "error", cls: "wide", cell: errorCell }, args,
        { title: "", key: "actions", cls: "actions", cell: (j) => h("span", { class: "btns" },
          button("Retry", () => act(`dead/${enc(j.queue)}/retry`, { ids: [j.id] }, (r) => r.retried ? `Job ${j.id} put back to run` : `Job ${j.id} was no longer dead`), { kind: "primary" }),
          button("Delete", () => act(`dead/${enc(j.queue)}/delete`, { ids: [j.id] }, () => `Job ${j.id} deleted`), { kind: "danger", confirm: `Delete dead job ${j.id} for good?` })) }];
    }
    return [id, task, queue, { title: "Enqueued", key: "enqueued_at", cell: (j) => when(j.enqueued_at) }, attempts, args,
      { title: "", key: "actions", cls: "actions", cell: cancelButton }];
  }

  pages.running = jobsPage("running", "Running jobs");
  pages.scheduled = jobsPage("scheduled", "Scheduled jobs");
  pages.dead = jobsPage("dead", "Dead jobs");
  pages.ready = jobsPage("ready", "Ready jobs");

  function simplePage(title, load, render) {
    return {
      setup() {
        this.box = h("div");
        fill(main, h("div", { class: "panel" }, h("h2", {}, title), this.box));
      },
      async update() {
        fill(this.box, render(await api(load)));
      },
    };
  }

  pages.workers = simplePage("Workers", "workers", (d) => table([
    { title: "Worker", key: "host", cell: (w) => h("span", {}, h("strong", {}, `${w.hostname}:${w.pid}`), h("br"), h("span", { class: "mono small muted" }, w.id)) },
    { title: "Queues", key: "queues", cell: (w) => h("span", { class: "chips" }, Object.entries(w.queues).map(([q, n]) => h("span", { class: "chip" }, `${q} × ${n}`)), w.concurrency ? h("span", { class: "chip" }, `cap ${w.concurrency}`) : null) },
    { title: "State", key: "state", cell: (w) => badge(w.state) },
    { title: "Uptime", key: "uptime", cell: (w) => duration(w.uptime_s) },
    { title: "Running", key: "running", cls: "num", cell: (w) => fmt(w.running) },
    { title: "Done", key: "done", cls: "num", cell: (w) => fmt(w.jobs_done) },
    { title: "Jobs / s", key: "rate", cls: "num", cell: (w) => w.jobs_per_s.toFixed(1) },
    { title: "Seen", key: "seen", cell: (w) => duration(w.last_seen_s) + " ago" },
  ], d.workers.map((w) => ({ data: w, attrs: { "data-worker": w.id } })), "No live workers. Start one with: aioworker run app:worker"));

  pages.schedules = simplePage("Schedules", "schedules", (d) => table([
    { title: "Name", key: "name", cell: (x) => h("strong", {}, x.name) },
    { title: "Task", key: "task", cell: (x) => x.task },
    { title: "Queue", key: "queue", cell: (x) => x.queue },
    { title: "Schedule", key: "schedule", cell: (x) => h("span", {}, h("code", {}, x.schedule), x.tz !== "-" ? h("span", { class: "muted small" }, " " + x.tz) : null) },
    { title: "Next run", key: "next", cell: (x) => when(x.next_run) },
    { title: "Last tick", key: "last", cell: (x) => when(x.last_tick) },
    { title: "Last job", key: "job", cell: (x) => x.last_job_id ? jobLink({ queue: x.queue, id: x.last_job_id }) : "–" },
    { title: "State", key: "state", cell: (x) => x.paused ? badge("paused") : badge("active") },
    { title: "", key: "actions", cls: "actions", cell: (x) => h("span", { class: "btns" },
      x.paused ? button("Resume", () => act(`schedules/${enc(x.name)}/resume`, {}, () => `Schedule ${x.name} resumed`), { kind: "primary" })
        : button("Pause", () => act(`schedules/${enc(x.name)}/pause`, {}, () => `Schedule ${x.name} paused`), { confirm: `Pause schedule ${x.name}? Its ticks are skipped while paused.` }),
      button("Run now", () => act(`schedules/${enc(x.name)}/run`, {}, (r) => `Enqueued ${r.job_id}`), { name: "run" })) },
  ], d.schedules.map((x) => ({ data: x, attrs: { "data-schedule": x.name } })), "No periodic schedules in this app (add one with @worker.cron)."));

  function progress(b) {
    const total = Math.max(b.total, 1);
    const bar = h("div", { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": b.total, "aria-valuenow": b.total - b.pending });
    for (const [key, n] of [["succeeded", b.succeeded], ["failed", b.failed], ["skipped", b.skipped]]) {
      if (!n) continue;
      const seg = h("span", { class: "seg " + key, title: `${n} ${key}` });
      seg.style.width = (100 * n) / total + "%";
      bar.append(seg);
    }
    const pct = b.total ? Math.floor((100 * (b.total - b.pending)) / b.total) : 0;
    return h("div", { class: "progress-cell" }, bar, h("span", { class: "small muted" }, `${fmt(b.total - b.pending)} / ${fmt(b.total)} · ${pct}%`));
  }

  pages.batches = simplePage("Batches", "batches", (d) => table([
    { title: "Batch", key: "id", cell: (b) => h("span", {}, h("strong", {}, b.description || b.id), h("br"), h("span", { class: "mono small muted" }, b.id)) },
    { title: "State", key: "state", cell: (b) => badge(b.state) },
    { title: "Progress", key: "progress", cls: "wide", cell: progress },
    { title: "Succeeded", key: "succeeded", cls: "num", cell: (b) => fmt(b.succeeded) },
    { title: "Failed", key: "failed", cls: "num", cell: (b) => fmt(b.failed) },
    { title: "Skipped", key: "skipped", cls: "num", cell: (b) => fmt(b.skipped) },
    { title: "Pending", key: "pending", cls: "num", cell: (b) => fmt(b.pending) },
    { title: "Created", key: "created", cell: (b) => when(b.created_at) },
    { title: "", key: "actions", cls: "actions", cell: (b) => b.finished || b.cancelled ? null
      : button("Cancel", () => act(`batches/${enc(b.id)}/cancel`, {}, () => `Batch ${b.id} cancelled`), { kind: "danger", confirm: `Cancel batch ${b.id}? Its children that have not started are skipped.` }) },
  ], d.batches.map((b) => ({ data: b, attrs: { "data-batch": b.id } })), "No batches."));

  pages.limiters = simplePage("Limiters", "limiters", (d) => table([
    { title: "Name", key: "name", cell: (l) => h("strong", {}, l.name) },
    { title: "Kind", key: "kind", cell: (l) => l.kind },
    { title: "Limit", key: "limit", cell: (l) => l.per_s ? `${fmt(l.limit)} per ${duration(l.per_s)}` : fmt(l.limit) },
    { title: "Keyed", key: "keyed", cell: (l) => (l.keyed ? "per key" : "shared") },
    { title: "Tasks", key: "tasks", cell: (l) => h("span", { class: "chips" }, (l.tasks || []).map((t) => h("span", { class: "chip" }, t))) },
    { title: "In use", key: "in_use", cls: "num", cell: (l) => (l.in_use === null || l.in_use === undefined ? "–" : fmt(l.in_use)) },
    { title: "Waiting", key: "waiting", cls: "num", cell: (l) => (l.waiting === null || l.waiting === undefined ? "–" : fmt(l.waiting)) },
  ], d.limiters.map((l) => ({ data: l, attrs: { "data-limiter": l.name } })), "No limiters on this app's tasks."));

  function kv(rows) {
    return h("dl", { class: "kv" }, rows.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  }

  function jsonBlock(title, value, hidden) {
    if (hidden) return h("section", { class: "block" }, h("h3", {}, title), h("p", { class: "muted" }, "hidden (the dashboard runs without show_args)"));
    if (value === null || value === undefined) return null;
    return h("section", { class: "block" }, h("h3", {}, title), h("pre", {}, JSON.stringify(value, null, 2)));
  }

  // the payload's option and feature keys (see aioworker/payload.py), in words
  const OPTIONS = {
    r: ["Retries", (v) => fmt(v)],
    o: ["Timeout", (v) => duration(v)],
    d: ["Delay", (v) => duration(v / 1000)],
    at: ["Due", (v) => when(new Date(v).toISOString())],
    b: ["Batch", (v) => h("span", { class: "mono" }, v)],
    bc: ["Batch callback", (v) => `${v.cb} of batch ${v.id}`],
    g: ["Group", (v) => String(v)],
    w: ["Unique while running", (v) => h("span", { class: "mono" }, String(v[0]))],
    tc: ["Trace", (v) => h("span", { class: "mono small" }, v.traceparent || "")],
  };

  function optionsBlock(payload) {
    const known = Object.keys(payload).filter((k) => OPTIONS[k]);
    const rest = Object.fromEntries(Object.entries(payload).filter(([k]) => !OPTIONS[k]));
    if (!known.length && !Object.keys(rest).length) return null;
    return h("section", { class: "block" }, h("h3", {}, "Options"),
      known.length ? kv(known.map((k) => [OPTIONS[k][0], OPTIONS[k][1](payload[k])])) : null,
      Object.keys(rest).length ? h("pre", {}, JSON.stringify(rest, null, 2)) : null);
  }

  const stepNames = (j) => (Array.isArray(j.steps) ? j.steps : Object.keys(j.steps || {}));

  pages.job = {
    setup() {
      this.box = h("div", { class: "panel" });
      fill(main, this.box);
    },
    async update() {
      const id = params.get("id") || "";
      const queue = params.get("queue");
      let j;
      try {
        j = await api(queue ? `jobs/${enc(queue)}/${enc(id)}` : `find/${enc(id)}`);
      } catch (err) {
        if (err.status !== 404) throw err;
        fill(this.box, h("h2", {}, "Job ", h("span", { class: "mono" }, id)), h("p", { class: "empty" }, "Nothing is stored about this job (it never existed, or its result expired)."));
        return;
      }
      const acts = h("span", { class: "btns" });
      if (["queued", "scheduled", "running"].includes(j.status)) acts.append(cancelButton(j) || "");
      if (j.status === "dead") {
        acts.append(
          button("Retry", () => act(`dead/${enc(j.queue)}/retry`, { ids: [j.id] }, () => `Job ${j.id} put back to run`), { kind: "primary" }) || "",
          button("Delete", () => act(`dead/${enc(j.queue)}/delete`, { ids: [j.id] }, () => `Job ${j.id} deleted`), { kind: "danger", confirm: `Delete dead job ${j.id} for good?` }) || "");
      }
      const err = j.error;
      fill(this.box,
        h("div", { class: "toolbar" }, h("h2", {}, "Job ", h("span", { class: "mono" }, j.id)), badge(j.status), acts),
        kv([
          ["Task", j.task || "?"],
          ["Queue", link(`ready?queue=${enc(j.queue)}`, j.queue)],
          ["Attempts", fmt(j.attempts)],
          ["Enqueued", when(j.enqueued_at)],
          j.scheduled_at && ["Runs", when(j.scheduled_at)],
          j.finished_at && ["Finished", when(j.finished_at)],
          j.worker && ["Worker", h("span", { class: "mono small" }, j.worker)],
          j.cancel_requested && ["Cancel", "requested"],
          stepNames(j).length && ["Steps done", stepNames(j).join(", ")],
        ]),
        err ? h("section", { class: "block" }, h("h3", {}, "Error"), h("p", { class: "error-line" }, `${err.type}: ${err.message}`), err.traceback ? h("pre", { class: "traceback" }, err.traceback) : null) : null,
        jsonBlock("Arguments", j.hidden ? null : { args: j.args, kwargs: j.kwargs }, j.hidden),
        j.hidden ? null : jsonBlock("Result", j.result),
        j.hidden ? null : jsonBlock("Checkpoint", j.checkpoint),
        j.hidden || !j.steps || Array.isArray(j.steps) ? null : jsonBlock("Steps", j.steps),
        optionsBlock(j.payload || {}));
    },
  };

  // -- the refresh loop -----------------------------------------------------------

  const current = pages[PAGE] || pages.queues;
  let timer = null;
  let busy = false;

  async function refresh() {
    clearTimeout(timer);
    if (!busy) {
      busy = true;
      try {
        await current.update();
        setStatus("live · " + new Date().toLocaleTimeString(), "ok");
      } catch (err) {
        setStatus(err.status === 503 ? "Redis unavailable" : "error: " + err.message, "error");
      } finally {
        busy = false;
      }
    }
    if (!document.hidden) timer = setTimeout(refresh, REFRESH_MS);
  }

  function refreshNow() {
    setTimeout(refresh, 0);
  }

  document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshNow(); });
  document.getElementById("find").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = new FormData(ev.target).get("id").trim();
    if (id) location.href = "job?" + new URLSearchParams({ id });
  });
  window.addEventListener("resize", () => refreshNow());

  current.setup();
  refresh();
})();
