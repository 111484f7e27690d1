// Deploy page: load the recent versions of the chosen services without a page reload, and keep
// the three ways of naming a version (list, sha, branch) exclusive. Without JavaScript the
// "Show versions" button reloads the page with the same choices.
const form = document.getElementById("deploy-form");
if (form) {
  const services = form.elements.namedItem("services");
  const versions = document.getElementById("versions");
  const sha = form.elements.namedItem("sha");
  const branch = form.elements.namedItem("branch");
  const show = document.getElementById("show-versions");
  if (show) show.hidden = true;

  const uncheckVersions = () => {
    for (const radio of versions.querySelectorAll("input[name=version]")) radio.checked = false;
  };

  // Offer only the groups of the chosen services in the chosen environments.
  const environments = form.elements.namedItem("environments");
  const groups = form.elements.namedItem("groups");
  const filterGroups = () => {
    const chosen = (select) => new Set([...select.selectedOptions].map((o) => o.value));
    const s = chosen(services);
    const e = chosen(environments);
    for (const option of groups.options) {
      const fits = s.has(option.dataset.service) && e.has(option.dataset.environment);
      option.hidden = !fits;
      if (!fits) option.selected = false;
    }
  };
  services.addEventListener("change", filterGroups);
  environments.addEventListener("change", filterGroups);
  filterGroups();

  // "All groups" replaces the choice of single groups (the server expands it).
  const allGroups = form.elements.namedItem("all_groups");
  if (allGroups) {
    const toggle = () => { groups.disabled = allGroups.checked; };
    allGroups.addEventListener("change", toggle);
    toggle();
  }

  services.addEventListener("change", async () => {
    const params = new URLSearchParams();
    for (const option of services.selectedOptions) params.append("services", option.value);
    const response = await fetch(`${versions.dataset.url}?${params}`, { credentials: "same-origin" });
    if (response.ok) versions.innerHTML = await response.text();
  });
  versions.addEventListener("change", (event) => {
    if (event.target.name === "version") { sha.value = ""; branch.value = ""; }
  });
  sha.addEventListener("input", () => { if (sha.value) { uncheckVersions(); branch.value = ""; } });
  branch.addEventListener("input", () => { if (branch.value) { uncheckVersions(); sha.value = ""; } });
}
