
() => {
  if (window.stylemixPreview) return [];
  window.stylemixPreview = true;
  let busy = false, next = null, count = 0;
  const shown = () => document.querySelector('#view-blend img');
  const send = () => {
    const move = next;
    next = null;
    if (!move) return;
    busy = true;
    const before = shown() ? shown().src : null;
    const image = new Image();
    image.onload = () => {
      // Only over the image the move started from: never over a newer one Gradio has put there.
      if (shown() && shown().src === before) shown().src = image.src;
      busy = false;
      send();
    };
    image.onerror = () => { busy = false; send(); };
    const root = ((window.gradio_config && window.gradio_config.root) || location.href).replace(/[?#].*$/, '');
    const url = new URL('stylemix/preview.png', root.endsWith('/') ? root : root + '/');
    for (const [k, v] of Object.entries(move)) url.searchParams.set(k, v);
    image.src = url.href;
  };
  document.addEventListener('input', event => {
    const info = document.querySelector('#preview-token [data-token]');
    const target = event.target;
    if (!info || !(target instanceof HTMLInputElement) || target.value === '') return;
    const fields = info.dataset.fields.split(' ');
    const holder = target.closest(fields.map(f => '#' + CSS.escape(f)).join(','));
    if (!holder) return;
    // Every movable slider's value as the page shows it, not only the one moved: moves that
    // were never sent (the page sends the newest only) must not be lost from the drawing.
    const values = fields.filter(f => f !== holder.id).map(f => {
      const input = document.querySelector('#' + CSS.escape(f) + ' input[type=range]');
      return input && input.value !== '' ? f + '=' + input.value : null;
    }).filter(Boolean).join(',');
    next = {token: info.dataset.token, field: holder.id, value: target.value, others: values, n: ++count};
    if (!busy) send();
  }, true);
  return [];
}
