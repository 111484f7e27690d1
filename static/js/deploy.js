// Deploy page. Without JavaScript everything works by submitting: "Show versions and check"
// reloads the page with the same choices, and a refused Deploy comes back with every refusal.
// With it: the recent versions of the chosen services (and what runs in the chosen
// environments) and the check of every target (server-rendered fragments) follow the
// selection; the services can be filtered; the three ways of naming a version stay exclusive.
const form = document.getElementById("deploy-form");
if (form) {
  const versions = document.getElementById("versions");
  const checks = document.getElementById("checks");
  const sha = form.elements.namedItem("sha");
  const branch = form.elements.namedItem("branch");
  const show = document.getElementById("show-versions");
  if (show) show.hidden = true;

  const ticked = (name) =>
    [...form.querySelectorAll(`input[name=${name}]:checked`)].map((box) => box.value);

  const uncheckVersions = () => {
    for (const radio of versions.querySelectorAll("input[name=version]")) radio.checked = false;
  };

  // Offer only the groups of the chosen services in the chosen environments.
  const allGroups = form.elements.namedItem("all_groups");
  const filterGroups = () => {
    const services = new Set(ticked("services"));
    const environments = new Set(ticked("environments"));
    for (const box of form.querySelectorAll("input[name=groups]")) {
      const fits = services.has(box.dataset.service) && environments.has(box.dataset.environment);
      box.closest(".group-choice").hidden = !fits;
      if (!fits) box.checked = false;
      box.disabled = Boolean(allGroups && allGroups.checked);
    }
  };

  // The filter box (shown when there are many services): hides the services whose name does
  // not contain the text; a ticked one stays visible.
  const filter = document.getElementById("service-filter");
  if (filter) {
    filter.addEventListener("input", () => {
      const text = filter.value.trim().toLowerCase();
      for (const choice of document.querySelectorAll("#service-choices .choice")) {
        const box = choice.querySelector("input");
        choice.hidden = Boolean(text) && !box.checked && !choice.dataset.name.toLowerCase().includes(text);
      }
    });
    // Enter in the filter box must not submit the Deploy form.
    filter.addEventListener("keydown", (event) => {
      if (event.key === "Enter") event.preventDefault();
    });
  }

  // Only the newest answer of each fragment is shown (answers may arrive out of order).
  let versionsAsked = 0;
  const refreshVersions = async () => {
    const asked = ++versionsAsked;
    const params = new URLSearchParams();
    for (const id of ticked("services")) params.append("services", id);
    for (const id of ticked("environments")) params.append("environments", id);
    const picked = form.querySelector("input[name=version]:checked");
    const response = await fetch(`${versions.dataset.url}?${params}`, { credentials: "same-origin" });
    if (!response.ok || asked !== versionsAsked) return;
    versions.innerHTML = await response.text();
    if (picked) {
      const again = versions.querySelector(`input[name=version][value="${picked.value}"]`);
      if (again) again.checked = true;
    }
  };

  let checksAsked = 0;
  let timer = null;
  const refreshChecks = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const asked = ++checksAsked;
      const reason = form.elements.namedItem("override_reason");
      const typed = reason ? reason.value : "";
      const response = await fetch(form.dataset.checkUrl, {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
      });
      if (!response.ok || asked !== checksAsked) return;
      const focused = document.activeElement && document.activeElement.id;
      checks.innerHTML = await response.text();
      const again = form.elements.namedItem("override_reason");
      if (again && typed) again.value = typed;
      if (focused === "id_override_reason" && again) again.focus();
    }, 250);
  };

  form.addEventListener("change", async (event) => {
    const name = event.target.name;
    if (name === "override_reason") return;
    if (name === "services" || name === "environments") {
      filterGroups();
      await refreshVersions();
    }
    if (name === "all_groups") filterGroups();
    if (name === "version") {
      sha.value = "";
      branch.value = "";
    }
    refreshChecks();
  });
  sha.addEventListener("input", () => {
    if (sha.value) {
      uncheckVersions();
      branch.value = "";
    }
    refreshChecks();
  });
  branch.addEventListener("input", () => {
    if (branch.value) {
      uncheckVersions();
      sha.value = "";
    }
    refreshChecks();
  });
  form.elements.namedItem("message").addEventListener("input", refreshChecks);
  filterGroups();
}
