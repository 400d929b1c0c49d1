// What every page shares: looking an element up by id, building one in one call, setting
// its text only on a change, Chinese and English side by side, a video's sound button,
// taking secrets out of the address bar, and the JSON request to the server's API with its
// errors. Text from users and the server always goes in as text (el's children, setText),
// never as markup (no HTML sink anywhere in the pages).

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    // Through the CSSOM: the Content-Security-Policy refuses inline style attributes.
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

/** Set a node's text only when it changes, so live regions speak only about changes. */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/**
 * Read the query parameters ``names`` (a token, a stream key) and take them out of the
 * address bar, so they stay out of the history, bookmarks and screen shares; the others
 * and the fragment stay. Returns ``{name: value}``, "" for those not given.
 */
export function takeFromUrl(...names) {
  const params = new URLSearchParams(location.search);
  const taken = Object.fromEntries(names.map((name) => [name, params.get(name) || ""]));
  if (names.some((name) => params.has(name))) {
    for (const name of names) params.delete(name);
    const query = params.toString();
    history.replaceState(history.state, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
  }
  return taken;
}

/** Chinese and English side by side; either may be missing. */
export function bilingual(text, tag = "span") {
  return el(tag, { class: "bilingual" },
    text?.zh ? el("span", { lang: "zh", class: "zh" }, text.zh) : null,
    text?.en ? el("span", { class: "en" }, text.en) : null);
}

/** ``button`` turns ``video``'s sound on and off (it starts muted), and says which it does. */
export function soundButton(button, video) {
  const label = () => {
    button.setAttribute("aria-pressed", String(!video.muted));
    button.textContent = video.muted ? "🔈 Sound on · 开启声音" : "🔇 Mute · 静音";
  };
  button.addEventListener("click", () => {
    video.muted = !video.muted;
    if (!video.muted) video.play().catch(() => {});
    label();
  });
  video.addEventListener("volumechange", label);
}

/** The server's refusal: its HTTP status and error code, with its message (or the status's). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * One request to the API; resolves with the answer's JSON (null if it has none). The
 * token, when given, goes as a bearer token. A refusal throws an ApiError whose message is
 * the server's, else ``unexplained(response)`` (the status text unless a page says more);
 * a network failure throws fetch's own error.
 */
export async function api(path, {
  method = "GET", body, token = "", unexplained = (response) => response.statusText,
} = {}) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, data?.error?.code || "", data?.error?.message || unexplained(response));
  }
  return data;
}
