// Copy buttons: <button data-copy="input-id" data-copied="Copied">. The field stays selectable
// by hand where the clipboard is not allowed (http on an intranet).
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  if (!field) return;
  field.select();
  const done = () => { button.textContent = button.dataset.copied || button.textContent; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, () => document.execCommand("copy") && done());
  } else if (document.execCommand("copy")) {
    done();
  }
});
document.addEventListener("click", (event) => {
  if (event.target.closest("button[data-print]")) window.print();
});
