// The bulk form: "select this page" ticks or clears every photo's box, and the buttons
// name the tag chosen ("Reject dog"). Everything else works without script.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("bulk");
  if (!form) return;
  const all = document.getElementById("select-page");
  all.addEventListener("change", () => {
    for (const box of document.querySelectorAll('input[name="image"][form="bulk"]')) {
      box.checked = all.checked;
    }
  });
  const tag = form.elements.namedItem("tag");
  tag.addEventListener("change", () => {
    const label = tag.options[tag.selectedIndex].text;
    for (const button of form.querySelectorAll("button[data-verb]")) {
      button.textContent = `${button.dataset.verb} ${label}`;
    }
  });
});
