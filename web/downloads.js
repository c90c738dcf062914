// Downloads page: a Copy button for the fetch command (shown only where the clipboard works,
// which needs a secure context: the portal is HTTPS). The command stays selectable without it.

for (const button of document.querySelectorAll('button.copy[data-copy]')) {
  const source = document.getElementById(button.dataset.copy);
  const status = button.parentElement.querySelector('.copy-status');
  if (!source || !navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(source.textContent);
      status.textContent = 'Copied.';
    } catch (err) {
      status.textContent = `Not copied (${err.message}); select the command instead.`;
    }
  });
}
