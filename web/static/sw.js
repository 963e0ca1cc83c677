/* tidtam — the service worker: a district's pages and its report form open without a connection.
 *
 * Served as /sw.js (web/offline.py) so that it controls the whole site. Pages are network-first:
 * online, a person always sees the server's page, and a copy of a district's pages (/my, a
 * district's work, its report form) and of the photos' thumbnails is kept for when the network is
 * down. Static files are network-first too (the HTTP cache revalidates them), with a copy for
 * offline. A page this device never kept opens /offline instead.
 *
 * A person's pages live in one cache (PAGES) that is dropped whenever anyone signs in or out, so
 * the next person on a shared phone or office PC never opens the last one's pages. Each save the
 * report form makes (autosave, photos) refreshes the kept copy of that form, so a form reopened
 * offline shows what the server last had, not what it had when the page was first opened.
 *
 * Typed text and photos waiting for the network are not kept here but by the page (report.js's
 * localStorage copy; offline.js's IndexedDB queue), which sends them through the form's own
 * version check (409) when the network returns.
 */
"use strict";

const VERSION = "v1";
const SHELL = `tidtam-shell-${VERSION}`;  // static files and /offline: the same for everyone
const PAGES = "tidtam-pages";              // one person's pages and photos: dropped at sign-in/out
const PRECACHE = ["/static/tidtam.css", "/static/offline.js", "/static/report.js",
  "/static/manifest.webmanifest", "/static/icons/icon.svg", "/static/icons/icon-192.png", "/offline"];
const KEPT = [
  /^\/my$/,
  /^\/districts\/[^/]+$/,
  /^\/directives\/[^/]+\/districts\/[^/]+$/,
  /^\/directives\/[^/]+\/districts\/[^/]+\/report$/,
  /^\/photos\/\d+(\/thumb)?$/,
];
const REFRESH_MS = 500;   // saves come in bursts (autosave, then photos): refresh the copy once

let forgetting = Promise.resolve();
const refreshing = new Map();  // page path → timer of its pending refresh

const kept = (path) => KEPT.some((re) => re.test(path));

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL);
    // Without cookies: the offline page must name no one (and take no one's flash message).
    await Promise.all(PRECACHE.map(async (path) => {
      try {
        const response = await fetch(path, {credentials: "omit", cache: "no-cache"});
        if (response.ok) await cache.put(path, response);
      } catch (e) { /* fetched again on the next visit */ }
    }));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("tidtam-") && name !== SHELL && name !== PAGES) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

// A page may ask too (offline.js does on the sign-in page).
self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "forget") event.waitUntil(forget());
});

function forget() {
  for (const timer of refreshing.values()) clearTimeout(timer);
  refreshing.clear();
  forgetting = forgetting.then(() => caches.delete(PAGES)).catch(() => false);
  return forgetting;
}

async function keep(path, response) {
  await forgetting;  // never write a page into the cache a sign-out is emptying
  const cache = await caches.open(PAGES);
  await cache.put(new URL(path, self.location.origin).href, response);
}

function keepable(response) {
  return response.ok && response.type === "basic" && !response.redirected;
}

async function cached(path) {
  const cache = await caches.open(PAGES);
  return cache.match(new URL(path, self.location.origin).href);
}

async function page(request, path) {
  try {
    const response = await fetch(request);
    if (kept(path) && keepable(response)) await keep(path, response.clone());
    return response;
  } catch (e) {
    const copy = (kept(path) && await cached(path)) || (path === "/" && await cached("/my"));
    return copy || (await caches.match("/offline")) || Response.error();
  }
}

async function asset(request, cacheName) {
  try {
    const response = await fetch(request);
    if (keepable(response)) {
      const cache = await caches.open(cacheName);
      await cache.put(request, response.clone());
    }
    return response;
  } catch (e) {
    const copy = await caches.match(request, {ignoreSearch: true});
    if (copy) return copy;
    throw e;
  }
}

async function photo(request, path) {
  try {
    const response = await fetch(request);
    if (keepable(response)) await keep(path, response.clone());
    return response;
  } catch (e) {
    const copy = await cached(path);
    if (copy) return copy;
    throw e;
  }
}

// After a save from a kept page, fetch that page again (once per burst) so its copy is current.
function refreshSoon(path) {
  clearTimeout(refreshing.get(path));
  return new Promise((resolve) => {
    refreshing.set(path, setTimeout(async () => {
      refreshing.delete(path);
      try {
        const response = await fetch(path, {credentials: "same-origin", redirect: "follow"});
        if (keepable(response)) await keep(path, response);
      } catch (e) { /* offline again: the copy stays as it was */ }
      resolve();
    }, REFRESH_MS));
  });
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  const path = url.pathname;

  if (path === "/login" || (path === "/logout" && request.method === "POST")) {
    // Someone signs in or out: the pages kept for the last person go, before the next page.
    event.waitUntil(forget());
    return;
  }
  if (request.method !== "GET") {
    const from = request.referrer ? new URL(request.referrer) : null;
    if (request.mode === "navigate" || !from || from.origin !== url.origin || !kept(from.pathname)) {
      return;
    }
    const answer = fetch(request);
    event.respondWith(answer);
    event.waitUntil(answer.then((r) => (r.ok ? refreshSoon(from.pathname) : null), () => null));
    return;
  }
  if (request.mode === "navigate") {
    event.respondWith(page(request, path));
  } else if (path.startsWith("/static/")) {
    event.respondWith(asset(request, SHELL));
  } else if (kept(path)) {
    event.respondWith(photo(request, path));
  }
});
