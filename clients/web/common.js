// What every page shares: looking an element up by id, building one in one call, Chinese
// and English side by side, and the JSON request to the server's API with its errors.

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

/** Chinese and English side by side; either may be missing. */
export function bilingual(text, tag = "span") {
  return el(tag, { class: "bilingual" },
    text?.zh ? el("span", { lang: "zh", class: "zh" }, text.zh) : null,
    text?.en ? el("span", { class: "en" }, text.en) : null);
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
