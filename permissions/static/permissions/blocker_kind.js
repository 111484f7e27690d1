// Blocker admin: show only the settings of the chosen kind. Without JavaScript every section
// stays visible and the server still validates per kind, so this is a convenience only.
const KINDS = ["unconditional", "time_window", "branch", "concurrency", "ci_status", "promotion"];

function showKind(kind) {
  for (const name of KINDS) {
    for (const fieldset of document.querySelectorAll(`fieldset.${name}`)) {
      fieldset.hidden = name !== kind;
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const select = document.getElementById("id_kind");
  if (!select) return;
  showKind(select.value);
  select.addEventListener("change", () => showKind(select.value));
});
