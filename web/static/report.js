/* tidtam — the report form: autosave, photos, and adding/removing rows without a round trip.
 *
 * The form works without this script (every button posts it). With it, the whole form is
 * saved as JSON about a second after typing stops and when a field loses focus; the answer
 * brings the new version, the findings and the derived items. A save the server refuses as
 * stale (409) is never retried over someone else's work. Until a save succeeds, the entries
 * are kept in localStorage, so a dropped connection or a closed tab loses nothing.
 */
(() => {
  "use strict";
  const form = document.getElementById("report-form");
  if (!form || form.dataset.editable !== "1" || !window.fetch) return;
  document.documentElement.classList.add("js");

  const T = JSON.parse(document.getElementById("report-texts").textContent);
  const sessionsEl = document.getElementById("sessions");
  const outcomesEl = document.getElementById("outcome-list");
  const statusEl = document.getElementById("save-status");
  const banner = document.getElementById("save-banner");
  const storeKey = `tidtam:report:${form.dataset.district}:${form.dataset.directive}`;
  const DEBOUNCE_MS = 1000;
  // The report's own address: after a refused submit the tab shows …/report/submit, and
  // reloading that would post again.
  const reload = () => location.assign(form.getAttribute("action"));

  let version = Number(form.dataset.version);
  let dirty = false;      // typed since the last save was sent
  let stopped = false;    // a stale save: never write over the other person's work
  let timer = null;
  let retryMs = 0;
  let bypass = false;     // the next native submit is ours, let it through
  let queue = Promise.resolve();
  // A submit was tried (the server refused it and listed every error): from now on every
  // error shows; before that only those on fields typed in or touched (issue 15, item 3).
  let attempted = Boolean(document.getElementById("submit-refused"));
  let lastFindings = null;
  const sessions = () => [...sessionsEl.querySelectorAll(".session")];
  let savedKeys = new Set(sessions().filter((s) => s.dataset.saved === "1").map((s) => s.dataset.key));

  // --- the form as data ------------------------------------------------------------------------
  function collect() {
    return {
      sessions: sessions().map((card) => {
        const value = (name) => (card.querySelector(`[data-name="${name}"]`) || {}).value || "";
        const participants = {};
        card.querySelectorAll("[data-category]").forEach((input) => {
          participants[input.dataset.category] = input.value;
        });
        return {key: card.dataset.key, held_on: value("held_on"), center: value("center"),
          place: value("place"), kind: value("kind"), kind_other: value("kind_other"), participants};
      }),
      outcomes: [...outcomesEl.querySelectorAll("textarea")].map((t) => t.value).filter((v) => v.trim()),
    };
  }

  function fill(report) {
    sessionsEl.replaceChildren();
    (report.sessions || []).forEach((entry) => {
      const card = newCard(entry.key || newKey());
      for (const name of ["held_on", "center", "place", "kind", "kind_other"]) {
        const input = card.querySelector(`[data-name="${name}"]`);
        if (input) input.value = entry[name] || "";
      }
      card.querySelectorAll("[data-category]").forEach((input) => {
        const typed = (entry.participants || {})[input.dataset.category];
        input.value = typed === undefined || typed === null ? "" : typed;
      });
      hiddenToDate(card);
      sessionsEl.append(card);
    });
    outcomesEl.replaceChildren();
    (report.outcomes || []).forEach((text) => addOutcome(text, false));
    addOutcome("", false);
    renumber();
  }

  // --- kept on this device until the server has it ---------------------------------------------
  function remember(posted = false) {
    try {
      localStorage.setItem(storeKey, JSON.stringify({base: version, at: Date.now(), posted,
        report: collect()}));
    } catch (e) { /* private mode or full: the server copy is all we have */ }
  }
  function forget() {
    try { localStorage.removeItem(storeKey); } catch (e) { /* nothing kept */ }
  }
  function recall() {
    try { return JSON.parse(localStorage.getItem(storeKey) || "null"); } catch (e) { return null; }
  }

  // --- what the person sees --------------------------------------------------------------------
  // The one save status, at the top: saving, saved at HH:MM, waiting for the network, not saved.
  function setStatus(key, text) {
    if (!statusEl) return;
    statusEl.textContent = text || T[key] || "";
    statusEl.dataset.state = key;
  }
  function setBadge(data) {
    const badge = document.getElementById("report-status");
    if (!badge || !data.status_text) return;
    badge.textContent = data.status_text;
    badge.className = `badge report-${data.status}`;
  }

  // --- digits and the Thai date ----------------------------------------------------------------
  function num(text) {
    const thai = "๐๑๒๓๔๕๖๗๘๙";
    return form.dataset.digits === "thai" ? String(text).replace(/[0-9]/g, (d) => thai[d]) : String(text);
  }
  // The three selects (day, Thai month, B.E. year) → the hidden field the autosave sends; the
  // server turns "D/M/YYYY" into the ISO date, or names what is wrong with it.
  function dateToHidden(card) {
    const part = (p) => (card.querySelector(`.js-date-part[data-part="${p}"]`) || {}).value || "";
    const hidden = card.querySelector('[data-name="held_on"]');
    if (!hidden) return;
    const [d, m, y] = ["d", "m", "y"].map(part);
    hidden.value = d || m || y ? `${d}/${m}/${y}` : "";
  }
  function hiddenToDate(card) {
    const hidden = card.querySelector('[data-name="held_on"]');
    if (!hidden) return;
    let parts = ["", "", ""];
    const iso = /^(\d{4})-(\d{2})-(\d{2})$/.exec(hidden.value);
    if (iso) parts = [String(Number(iso[3])), String(Number(iso[2])), String(Number(iso[1]) + 543)];
    else if (/^\d*\/\d*\/\d*$/.test(hidden.value)) parts = hidden.value.split("/");
    ["d", "m", "y"].forEach((p, i) => {
      const select = card.querySelector(`.js-date-part[data-part="${p}"]`);
      if (!select) return;
      if (parts[i] && !select.querySelector(`option[value="${CSS.escape(parts[i])}"]`)) {
        select.append(new Option(num(parts[i]), parts[i]));
      }
      select.value = parts[i];
    });
  }

  // --- marks beside fields: typed in, touched, or after a submit was tried --------------------
  function touch(el) {
    for (let box = el.closest("[data-field]"); box && form.contains(box);
      box = box.parentElement && box.parentElement.closest("[data-field]")) {
      box.dataset.touched = "1";
    }
  }
  function visible(f) {
    if (attempted || f.shown) return true;
    const box = form.querySelector(`[data-msgs="${CSS.escape(f.field)}"]`);
    const holder = box && box.closest("[data-field]");
    return Boolean(holder && holder.dataset.touched === "1");
  }
  function renderMarks(data) {
    if (!data) return;
    lastFindings = data;
    form.querySelectorAll("[data-msgs]").forEach((el) => el.replaceChildren());
    for (const f of [...data.errors, ...data.warnings]) {
      const box = form.querySelector(`[data-msgs="${CSS.escape(f.field)}"]`);
      if (!box || !visible(f)) continue;
      const span = document.createElement("span");
      span.className = `field-msg ${f.severity}`;
      span.textContent = f.message;
      box.append(span);
    }
  }
  function showBanner(text, buttons) {
    banner.replaceChildren();
    const p = document.createElement("p");
    p.textContent = text;
    banner.append(p);
    for (const {label, action} of buttons) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.addEventListener("click", action);
      banner.append(b);
    }
    banner.hidden = false;
  }
  function hideBanner() { banner.hidden = true; }
  function detailText(data) {
    const d = data && data.detail;
    if (!d || typeof d !== "object") return "";
    return document.documentElement.lang === "en" ? `${d.en} (${d.th})` : `${d.th} (${d.en})`;
  }

  function apply(data) {
    version = data.version;
    form.dataset.version = String(version);
    form.querySelectorAll(".js-version").forEach((input) => { input.value = String(version); });
    document.getElementById("findings").innerHTML = data.html.findings;
    document.getElementById("summary").innerHTML = data.html.summary;
    for (const card of sessions()) {
      const html = data.html.photos[card.dataset.key];
      if (html !== undefined) card.querySelector(".photo-list").innerHTML = html;
    }
    renderMarks(data);
    setBadge(data);
    if (!data.editable) reload();  // submitted or locked meanwhile: show it as it is
  }

  // --- talking to the server, one request at a time --------------------------------------------
  function enqueue(task) {
    const run = queue.then(task);
    queue = run.catch(() => false);
    return run;
  }
  function csrf() { return form.querySelector('input[name="csrftoken"]').value; }
  function post(url, body, type) {
    const headers = {"x-csrftoken": csrf(), "accept": "application/json"};
    if (type) headers["content-type"] = type;
    return fetch(url, {method: "POST", body, headers, credentials: "same-origin"});
  }

  function markDirty() {
    dirty = true;
    remember();
    if (stopped) return;
    setStatus("unsaved");
    clearTimeout(timer);
    timer = setTimeout(saveSoon, DEBOUNCE_MS);
  }
  function saveSoon() {
    clearTimeout(timer);
    timer = null;
    return enqueue(save);
  }

  async function save() {
    if (stopped) return false;
    if (!dirty) return true;
    dirty = false;
    const report = collect();
    setStatus("saving");
    let response;
    try {
      response = await post(form.dataset.draftUrl, JSON.stringify({version, report, attempted}),
        "application/json");
    } catch (e) {
      dirty = true;
      offline();
      return false;
    }
    const ok = await answered(response, T.failed);
    if (ok) savedKeys = new Set(report.sessions.map((s) => s.key));
    else dirty = true;
    return ok;
  }

  async function answered(response, failedText) {
    if (response.status === 409) {
      stopped = true;
      if (window.tidtamOffline) window.tidtamOffline.conflict();  // offline15: their text, to copy
      const data = await response.json().catch(() => null);
      setStatus("failed");
      showBanner(`${T.conflict} ${detailText(data)}`.trim(), [{label: T.reload, action: reload}]);
      return false;
    }
    const data = await response.json().catch(() => null);
    if (!response.ok || !data || data.version === undefined) {
      if (response.status >= 500) { offline(); return false; }
      setStatus("failed");
      showBanner(`${failedText} ${detailText(data)}`.trim(), [{label: T.reload, action: reload}]);
      return false;
    }
    retryMs = 0;
    apply(data);
    if (dirty) remember(); else forget();
    if (dirty) setStatus("unsaved"); else setStatus("saved", data.saved_text);
    return data;
  }

  function offline() {
    setStatus("offline");
    remember();
    retryMs = Math.min(60000, retryMs ? retryMs * 2 : 3000);
    setTimeout(() => { if (dirty) saveSoon(); }, retryMs);
  }

  // --- photos ----------------------------------------------------------------------------------
  function upload(input, queued) {  // offline15: queued = photos the device kept (offline.js)
    const card = input.closest(".session");
    const files = queued || [...input.files];
    if (!card || !files.length) return Promise.resolve(false);
    const key = card.dataset.key;
    const msgs = card.querySelector(".photo-msgs");
    msgs.textContent = T.uploading;
    // --- offline15: photos that cannot go now wait on the device (web/static/offline.js) ---
    const keep = () => { msgs.textContent = window.tidtamOffline && window.tidtamOffline.hold(card, files) ? "" : T.upload_failed; return false; };
    // --- end offline15 ---
    return enqueue(async () => {
      if (!savedKeys.has(key)) dirty = true;  // a new session: save it first, photos need its key
      if (dirty && !(await save())) return keep();
      const body = new FormData();
      body.append("csrftoken", csrf());
      body.append("session_key", key);
      if (attempted) body.append("attempted", "1");  // the answer keeps listing every error
      files.forEach((file) => body.append("files", file, file.name));
      let response;
      try {
        response = await post(form.dataset.photosUrl, body);
      } catch (e) {
        return keep();
      } finally {
        input.value = "";
      }
      const data = await answered(response, T.upload_failed);
      if (!data && (response.status === 409 || response.status >= 500)) return keep();  // offline15
      msgs.replaceChildren();
      for (const refused of (data && data.refused) || []) {
        const p = document.createElement("p");
        p.className = "field-msg error";
        p.textContent = refused.text;
        msgs.append(p);
      }
      return true;
    });
  }

  function deletePhoto(id) {
    enqueue(async () => {
      if (dirty && !(await save())) return;
      let response;
      try { response = await post(`/photos/${id}/delete`, null); } catch (e) { offline(); return; }
      await answered(response, T.failed);
    });
  }

  // --- rows ------------------------------------------------------------------------------------
  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replaceAll("-", "");
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  }
  function newCard(key) {
    const html = document.getElementById("session-template").innerHTML
      .replaceAll("__key__", key).replaceAll("__n__", "0").replaceAll("__i__", "0");
    const holder = document.createElement("div");
    holder.innerHTML = html.trim();
    return holder.firstElementChild;
  }
  function addOutcome(text, focus) {
    const holder = document.createElement("ol");
    holder.innerHTML = document.getElementById("outcome-template").innerHTML.trim();
    const item = holder.firstElementChild;
    item.querySelector("textarea").value = text;
    outcomesEl.append(item);
    if (focus) item.querySelector("textarea").focus();
  }
  function renumber() {
    sessions().forEach((card, i) => {
      card.querySelector(".js-number").textContent = num(i + 1);
      card.querySelectorAll("[name], [id], [for], [data-field], [data-msgs]").forEach((el) => {
        for (const attr of ["name", "id", "for", "data-field", "data-msgs"]) {
          const v = el.getAttribute(attr);
          if (v) el.setAttribute(attr, v.replace(/sessions-(\d+|__i__)-/g, `sessions-${i}-`)
            .replace(/sessions\[(\d+|__i__)\]/g, `sessions[${i}]`));
        }
      });
      const remove = card.querySelector(".js-remove-session");
      if (remove) remove.value = `remove-session-${i}`;
      syncKind(card);
    });
    [...outcomesEl.querySelectorAll(".js-remove-outcome")].forEach((b, i) => { b.value = `remove-outcome-${i}`; });
  }
  function syncKind(card) {
    const select = card.querySelector(".js-kind");
    const other = card.querySelector(".kind-other");
    if (select && other) other.hidden = select.value !== "other" && !other.querySelector("input").value;
  }

  // --- wiring ----------------------------------------------------------------------------------
  form.addEventListener("input", (e) => {
    if (e.target.classList.contains("js-date-part")) dateToHidden(e.target.closest(".session"));
    if (e.target.type !== "file") markDirty();
  });
  form.addEventListener("change", (e) => {
    if (e.target.type === "file") upload(e.target);
    else if (e.target.classList.contains("js-kind")) syncKind(e.target.closest(".session"));
  });
  form.addEventListener("focusout", (e) => {
    if (!e.target.matches("input, select, textarea")) return;
    // Leaving a date part for its neighbour is not leaving the date.
    const next = e.relatedTarget;
    const sameDate = next && e.target.closest(".thai-date") && next.closest(".thai-date") === e.target.closest(".thai-date");
    if (!sameDate) { touch(e.target); renderMarks(lastFindings); }
    if (dirty && !stopped) saveSoon();
  });
  form.addEventListener("click", (e) => {
    const button = e.target.closest("button");
    if (!button || !form.contains(button)) return;
    const has = (name) => button.classList.contains(name);
    if (has("js-add-session")) {
      e.preventDefault();
      const card = newCard(newKey());
      sessionsEl.append(card);
      renumber();
      markDirty();
      card.querySelector('[data-name="held_on"]').focus();
    } else if (has("js-remove-session")) {
      e.preventDefault();
      const card = button.closest(".session");
      if (card.querySelector(".thumbs li") && !confirm(T.confirm_remove)) return;
      card.remove();
      renumber();
      markDirty();
    } else if (has("js-add-outcome")) {
      e.preventDefault();
      addOutcome("", true);
      renumber();
    } else if (has("js-remove-outcome")) {
      e.preventDefault();
      button.closest(".outcome").remove();
      if (!outcomesEl.querySelector("textarea")) addOutcome("", false);
      renumber();
      markDirty();
    } else if (has("js-photo-delete")) {
      e.preventDefault();
      if (confirm(T.confirm_delete_photo)) deletePhoto(button.dataset.photo);
    } else if (button.value === "save") {
      e.preventDefault();
      dirty = true;
      saveSoon();
    }
  });
  form.addEventListener("submit", (e) => {
    if (bypass) return;  // saved just now: let the browser post it
    e.preventDefault();
    if (stopped) return;
    const submitter = e.submitter;
    if (submitter && submitter.classList.contains("js-submit")) attempted = true;
    clearTimeout(timer);
    enqueue(save).then((ok) => {
      if (!ok) return;
      remember(true);  // if this post never arrives, the next visit restores and saves it
      bypass = true;
      // Later, not now: a form ignores a new submit while its submit event is still firing.
      setTimeout(() => {
        if (form.requestSubmit && submitter) form.requestSubmit(submitter); else form.submit();
      }, 0);
    });
  });
  window.addEventListener("online", () => { if (dirty && !stopped) saveSoon(); });
  // offline15: photos kept on the device go through upload() above when the network returns
  if (window.tidtamOffline) window.tidtamOffline.attach(form, (card, files) => upload(card.querySelector("input.js-photos"), files));

  // --- on load: is there something this device did not get to save? ---------------------------
  sessions().forEach(syncKind);
  const local = recall();
  if (local && local.report) {
    if (JSON.stringify(local.report) === JSON.stringify(collect())) {
      forget();
    } else if (local.base === version) {
      fill(local.report);
      showBanner(T.restored, []);
      dirty = true;
      saveSoon();
    } else if (local.posted) {
      forget();  // the post arrived: the server's copy is newer than this one
    } else {
      showBanner(T.local_older, [
        {label: T.use_local, action: () => { hideBanner(); fill(local.report); dirty = true; saveSoon(); }},
        {label: T.discard_local, action: () => { hideBanner(); forget(); }},
      ]);
    }
  }
})();
