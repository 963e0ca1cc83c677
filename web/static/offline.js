/* tidtam — working without a connection, on every page: the service worker, the count of what
 * waits, and photos kept on the device until the network returns.
 *
 * Loaded from base.html's head (defer), so it runs before report.js. It registers /sw.js (which
 * keeps a copy of a district's pages and report form: see web/static/sw.js), shows how many
 * entries wait to be sent ("รอส่ง 2 รายการ" / "2 waiting"), and gives report.js a queue:
 * photos it could not send are kept in IndexedDB (with the signed-in person's id) and handed back
 * to report.js's own upload when the network returns, after its save of the typed text, so the
 * form's version check (409) still guards every write. Typed text waits in report.js's own
 * localStorage copy (written at every keystroke, so a closed tab loses nothing); it counts here.
 * On a 409 the person's entries stay on the device, and their text is shown for them to copy.
 *
 * The script tag carries the person's id (data-user, empty when signed out) and the words
 * (data-words, from web/locale/*.json).
 */
(() => {
  "use strict";
  const me = document.currentScript;
  const user = (me && me.dataset.user) || "";
  let W = {};
  try { W = JSON.parse((me && me.dataset.words) || "{}"); } catch (e) { W = {}; }
  const word = (key, count) => String(W[key] || "").replace("{count}", String(count));
  const PAGES = "tidtam-pages";
  const TYPED = "tidtam:report:";  // report.js's keys
  const FRESH_MS = 5000;           // typed a moment ago, online: the autosave is on its way

  // --- the service worker ----------------------------------------------------------------------
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js", {scope: "/"}).catch(() => { /* plain pages */ });
  }
  // On the sign-in page nobody is signed in: nothing the last person opened stays on the device.
  if (!user && location.pathname === "/login") {
    if (window.caches) caches.delete(PAGES).catch(() => false);
    if (navigator.serviceWorker && navigator.serviceWorker.controller) {
      navigator.serviceWorker.controller.postMessage({type: "forget"});
    }
  }

  // --- IndexedDB: photos waiting ---------------------------------------------------------------
  const opened = new Promise((resolve) => {
    if (!window.indexedDB) { resolve(null); return; }
    const request = indexedDB.open("tidtam-offline", 1);
    request.onupgradeneeded = () => {
      request.result.createObjectStore("photos", {keyPath: "id", autoIncrement: true});
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => resolve(null);
  });
  async function store(mode, work) {
    const db = await opened;
    if (!db) return null;
    return new Promise((resolve, reject) => {
      const tx = db.transaction("photos", mode);
      const result = work(tx.objectStore("photos"));
      tx.oncomplete = () => resolve(result && "result" in result ? result.result : null);
      tx.onerror = tx.onabort = () => reject(tx.error);
    });
  }
  const allPhotos = async () => (await store("readonly", (s) => s.getAll())) || [];
  const mine = async () => (await allPhotos()).filter((r) => r.owner === user);
  const removePhotos = (ids) => store("readwrite", (s) => { ids.forEach((id) => s.delete(id)); });

  // --- the count of what waits -----------------------------------------------------------------
  let badge = null;
  let waiting = 0;
  let refused = false;  // a save was refused as stale: what was typed waits for the person
  function typedWaiting() {
    let count = 0;
    try {
      for (let i = 0; i < localStorage.length; i += 1) {
        const key = localStorage.key(i);
        if (!key || !key.startsWith(TYPED)) continue;
        const entry = JSON.parse(localStorage.getItem(key) || "null");
        if (!entry || entry.posted) continue;
        // older than the form on the server (a 409, or changed elsewhere): waits for the person
        const older = form && key === `${TYPED}${formId()}` && entry.base !== Number(form.dataset.version);
        if (refused || older || !navigator.onLine || Date.now() - entry.at > FRESH_MS) count += 1;
      }
    } catch (e) { /* no storage: nothing kept */ }
    return count;
  }
  async function update() {
    let photos = 0;
    try { photos = user ? (await mine()).length : 0; } catch (e) { photos = 0; }
    waiting = photos + typedWaiting();
    const offline = !navigator.onLine;
    if (!badge) {
      badge = document.createElement("p");
      badge.className = "offline-badge";
      badge.setAttribute("role", "status");
      badge.setAttribute("aria-live", "polite");
      document.body.append(badge);
    }
    const parts = [];
    if (offline) parts.push(word("offline"));
    if (waiting) parts.push(word("waiting", waiting));
    badge.textContent = parts.join(" · ");
    badge.dataset.waiting = String(waiting);
    badge.dataset.offline = offline ? "1" : "0";
    badge.hidden = !parts.length;
  }

  // --- the report form's queue -----------------------------------------------------------------
  let form = null;
  let upload = null;   // report.js's upload(card, files) → true once the server answered
  const known = new Map();  // File → its row, so a file handed back and refused is not kept twice
  const previews = [];

  function formId() { return form ? `${form.dataset.district}:${form.dataset.directive}` : ""; }
  function cardOf(key) {
    return form && form.querySelector(`.session[data-key="${CSS.escape(key)}"]`);
  }

  /** report.js: these photos could not be sent; keep them (true) or not (false: no storage). */
  function hold(card, files) {
    if (!form || !user || !window.indexedDB) return false;
    const fresh = files.filter((file) => !known.has(file));
    if (!fresh.length) return true;
    fresh.forEach((file) => known.set(file, null));
    const key = card.dataset.key;
    store("readwrite", (s) => {
      fresh.forEach((file) => {
        const request = s.add({owner: user, form: formId(), page: location.pathname, key,
          name: file.name, type: file.type, blob: file, at: Date.now()});
        request.onsuccess = () => known.set(file, request.result);
      });
    }).then(showHeld, () => { fresh.forEach((file) => known.delete(file)); })
      .finally(update);
    return true;
  }

  /** The sessions in report.js's copy of what was typed and not yet saved, on this form. */
  function typedKeys() {
    try {
      const entry = JSON.parse(localStorage.getItem(`${TYPED}${formId()}`) || "null");
      return new Set(((entry && entry.report && entry.report.sessions) || []).map((s) => s.key));
    } catch (e) { return new Set(); }
  }

  async function held() {
    const id = formId();
    return (await mine()).filter((r) => r.form === id);
  }

  async function showHeld() {
    if (!form) return;
    previews.splice(0).forEach((url) => URL.revokeObjectURL(url));
    form.querySelectorAll(".held-photos").forEach((list) => list.remove());
    for (const row of await held()) {
      const card = cardOf(row.key);
      if (!card) continue;
      let list = card.querySelector(".held-photos");
      if (!list) {
        list = document.createElement("ul");
        list.className = "thumbs held-photos";
        const after = card.querySelector(".photo-list");
        if (after) after.after(list); else card.append(list);
      }
      const item = document.createElement("li");
      const img = document.createElement("img");
      const url = URL.createObjectURL(row.blob);
      previews.push(url);
      img.src = url;
      img.alt = row.name;
      const note = document.createElement("small");
      note.textContent = word("held");
      item.append(img, note);
      list.append(item);
    }
  }

  let syncing = false;
  let retryMs = 0;
  let retry = null;
  // The "online" event often comes before requests get through (and a server may be down while
  // the device is online): until the photos have gone, try again, less and less often.
  function syncLater() {
    clearTimeout(retry);
    retryMs = Math.min(60000, retryMs ? retryMs * 2 : 2000);
    retry = setTimeout(sync, retryMs);
  }
  async function sync() {
    if (syncing || !form || !upload || !navigator.onLine) return;  // "online" calls again
    syncing = true;
    clearTimeout(retry);
    let left = 0;
    try {
      const groups = new Map();
      for (const row of await held()) {
        groups.set(row.key, [...(groups.get(row.key) || []), row]);
      }
      for (const [key, rows] of groups) {
        const card = cardOf(key);
        if (!card && !typedKeys().has(key)) {  // the person removed that session: its photos too
          await removePhotos(rows.map((r) => r.id));
          continue;
        }
        if (!card) { left += rows.length; continue; }  // only in the typed copy (a 409): later
        const files = rows.map((r) => (r.blob instanceof File ? r.blob
          : new File([r.blob], r.name, {type: r.type})));
        files.forEach((file, i) => known.set(file, rows[i].id));
        if (!(await upload(card, files))) { left = rows.length; break; }  // offline, or stale: kept
        await removePhotos(rows.map((r) => r.id));
      }
    } catch (e) { left = 1; } finally {
      syncing = false;
      if (left && !refused) syncLater(); else retryMs = 0;
      await showHeld();
      update();
    }
  }

  /** report.js: its form and its upload; held photos show, and go when the network allows. */
  function attach(reportForm, uploader) {
    form = reportForm;
    upload = uploader;
    showHeld().then(() => setTimeout(sync, 500));
  }

  /** report.js: the server refused a save as stale (409). Show what was typed, to copy. */
  function conflict() {
    refused = true;
    update();
    if (!form || form.querySelector(".offline-conflict")) return;
    const lines = [];
    form.querySelectorAll(".session").forEach((card, i) => {
      lines.push(`${i + 1}.`);
      card.querySelectorAll("input, select, textarea").forEach((field) => {
        if (field.type === "hidden" || field.type === "file" || !field.value) return;
        const label = field.id && form.querySelector(`label[for="${CSS.escape(field.id)}"]`);
        const value = field.tagName === "SELECT" ? field.selectedOptions[0].textContent : field.value;
        lines.push(`   ${label ? label.textContent.trim() : field.name}: ${value.trim()}`);
      });
    });
    const outcomes = [...form.querySelectorAll("#outcome-list textarea")]
      .map((t) => t.value.trim()).filter(Boolean);
    outcomes.forEach((text) => lines.push(`- ${text}`));
    const box = document.createElement("section");
    box.className = "offline-conflict card";
    const title = document.createElement("p");
    title.textContent = word("conflict_title");
    const text = document.createElement("textarea");
    text.readOnly = true;
    text.rows = Math.min(16, lines.length + 1);
    text.value = lines.join("\n");
    const copy = document.createElement("button");
    copy.type = "button";
    copy.textContent = word("copy");
    copy.addEventListener("click", () => {
      text.select();
      const done = () => { copy.textContent = word("copied"); };
      if (navigator.clipboard) navigator.clipboard.writeText(text.value).then(done, () => document.execCommand("copy") && done());
      else if (document.execCommand("copy")) done();
    });
    box.append(title, text, copy);
    const banner = document.getElementById("save-banner");
    if (banner) banner.after(box); else form.prepend(box);
  }

  window.tidtamOffline = {attach, hold, conflict, update};

  // --- wiring ----------------------------------------------------------------------------------
  window.addEventListener("online", () => { update(); retryMs = 0; sync(); });
  window.addEventListener("offline", update);
  document.addEventListener("input", () => setTimeout(update, 50));
  setInterval(update, 3000);
  document.addEventListener("submit", (e) => {
    // Signing out with entries still waiting: they stay on this device until this person signs
    // in again; say so first.
    if (!e.target.matches('form[action="/logout"]') || !waiting) return;
    if (!confirm(word("signout_waiting", waiting))) e.preventDefault();
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", update);
  else update();
})();
