"use strict";
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const r = await fetch("/login", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({password: document.getElementById("password").value})});
  if (r.ok) location.href = "/";
  else document.getElementById("login-error").textContent = (await r.json()).error || "sign-in failed";
});
