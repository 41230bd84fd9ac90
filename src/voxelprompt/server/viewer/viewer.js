// voxelprompt viewer: NiiVue (vendor/niivue.umd.js) over the MONAI Label API of `voxelprompt serve`.
//
// The page opens a CT (uploaded to the server's datastore, or one already there), shows it in
// NiiVue's multiplanar view, turns clicks into prompts in the STORED image's voxel indices
// (i, j, k of the file's own array), asks /infer/{model} and shows the label map it returns as a
// NiiVue label overlay coloured from /catalog. window.voxelprompt is a small hook for tests.
'use strict';

(() => {
  const { Niivue, NVImage, SLICE_TYPE, DRAG_MODE, SHOW_RENDER, MULTIPLANAR_TYPE } = window.niivue;
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = 'voxelprompt-token';
  const API = new URL('../', location.href); // the page lives at /viewer/, the API at /
  const FALLBACK = [[255, 200, 0], [0, 200, 255], [255, 90, 200], [120, 255, 80]]; // names outside the catalog

  const state = {
    info: null, // GET /info/
    catalog: new Map(), // class name -> {id, name, color}
    imageId: null, // datastore id of the open image
    base: null, // NVImage of the CT
    overlay: null, // NVImage of the last result
    actions: [], // prompts in the order given: {kind: 'point', ijk, mm, positive} | {kind: 'box', roi}
    result: null, // {labelNames, counts, params, url, seconds}
    lastClick: null, // {ijk, mm, value}: the last click, NiiVue's mm and its intensity there
    busy: false, again: false, requests: 0, error: null,
  };

  // ---- HTTP -------------------------------------------------------------------------------------

  /** fetch() on the server's API with the token; a non-2xx reply throws Error(detail). */
  async function api(method, path, body) {
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    const reply = await fetch(new URL(path, API), { method, headers, body });
    if (!reply.ok) {
      let detail = `${reply.status} ${reply.statusText}`;
      try { detail = (await reply.json()).detail || detail; } catch (_) { /* not JSON */ }
      const err = new Error(detail);
      err.status = reply.status;
      throw err;
    }
    return reply;
  }

  function showError(err) {
    state.error = err ? String(err.message || err) : null;
    $('error').textContent = state.error || '';
    $('error').hidden = !state.error;
  }

  function setStatus(text, busy = false) {
    $('status').textContent = text;
    $('status').classList.toggle('busy', busy);
  }

  // ---- connecting: /info/, /catalog, the datastore ----------------------------------------------

  async function connect() {
    try {
      state.info = await (await api('GET', 'info/')).json();
    } catch (err) {
      if (err.status === 401) {
        $('token-form').hidden = false;
        setStatus('A token is needed.');
      }
      showError(err);
      return;
    }
    $('token-form').hidden = true;
    showError(null);
    const catalog = await (await api('GET', 'catalog')).json();
    state.catalog = new Map(catalog.map((c) => [c.name, c]));
    const models = Object.entries(state.info.models);
    $('model').replaceChildren(...models.map(([name, m]) => new Option(`${name} (${m.type})`, name)));
    const preferred = models.find(([, m]) => m.type === 'vista3d') || models[0];
    if (preferred) $('model').value = preferred[0];
    modelChanged();
    await listStored();
    setStatus('Open a CT to start.');
  }

  async function listStored() {
    const store = await (await api('GET', 'datastore/?output=all')).json();
    $('stored').replaceChildren(...store.images.map((id) => new Option(id, id)));
    $('open-stored').disabled = store.images.length === 0;
  }

  // ---- models and classes -------------------------------------------------------------------------

  const model = () => state.info.models[$('model').value];

  /** Whether the model takes clicks and boxes: deepgrow entries take a roi box when their family
   * has boxes (SegVol); VISTA3D's own entry takes clicks with or without classes. */
  function capabilities(m) {
    const clicks = m.type === 'vista3d' || m.type === 'deepgrow';
    const box = m.type === 'deepgrow' && (m.capabilities || []).includes('box'); // voxelprompt's /info/ extension
    return { clicks, box };
  }

  function modelChanged() {
    const m = model();
    const single = m.type === 'deepgrow'; // deepgrow segments one named structure (or an "object")
    // VISTA3D and automatic entries list their own classes; deepgrow any catalog class by name.
    const names = single ? ['object (clicks only)', ...state.catalog.keys()] : Object.keys(m.labels);
    $('classes').replaceChildren(...names.map((name, n) => {
      const label = document.createElement('label');
      const input = document.createElement('input');
      input.type = single ? 'radio' : 'checkbox';
      input.name = 'class';
      input.value = n === 0 && single ? '' : name;
      input.checked = single && n === 0;
      label.append(input, ` ${name}`);
      return label;
    }));
    $('everything').disabled = single;
    $('everything').checked = !single && m.type === 'segmentation';
    const caps = capabilities(m);
    $('mode-box').disabled = !caps.box;
    if (!caps.box && selectedMode() === 'box') document.querySelector('input[name=mode][value=positive]').checked = true;
    $('model-info').textContent = m.description;
    $('demo-banner').hidden = !m.demo; // voxelprompt's /info/ extension: the shipped demo model
    filterClasses();
    resetPrompts();
    syncControls();
  }

  function filterClasses() {
    const words = $('class-search').value.trim().toLowerCase();
    for (const label of $('classes').children) label.hidden = words !== '' && !label.textContent.toLowerCase().includes(words);
  }

  const selectedClasses = () => [...$('classes').querySelectorAll('input:checked')].map((i) => i.value).filter((v) => v);
  const selectedMode = () => document.querySelector('input[name=mode]:checked').value;

  /** Clicks are off for automatic models and while "Everything" is on (VISTA3D's everything run
   * takes no clicks); the class list is off under "Everything". */
  function syncControls() {
    const m = model();
    const clicksAllowed = capabilities(m).clicks && !$('everything').checked;
    for (const input of $('modes').querySelectorAll('input')) {
      input.disabled = !clicksAllowed || (input.value === 'box' && !capabilities(m).box);
    }
    $('classes').disabled = $('everything').checked;
    $('undo').disabled = state.actions.length === 0;
    $('run').disabled = !state.imageId;
    // Box mode: a left drag draws NiiVue's selection rectangle; otherwise a click moves the crosshair.
    nv.opts.dragModePrimary = selectedMode() === 'box' ? DRAG_MODE.roiSelection : DRAG_MODE.crosshair;
  }

  // ---- the image ------------------------------------------------------------------------------

  const nv = new Niivue({
    backColor: [0, 0, 0, 1], show3Dcrosshair: false, isColorbar: false, dragAndDropEnabled: false,
    multiplanarShowRender: SHOW_RENDER.NEVER, multiplanarLayout: MULTIPLANAR_TYPE.GRID, isRadiologicalConvention: true,
    crosshairColor: [1, 1, 0, 0.6], crosshairWidth: 0.3, crosshairGap: 6, drawOpacity: 1,
  });

  /** Show a CT file's bytes (name: its file name, which tells NiiVue the format). */
  async function showImage(bytes, name, imageId, shape) {
    const base = await NVImage.new(bytes, name);
    const dims = base.hdr.dims.slice(1, 4);
    if (shape && dims.some((d, a) => d !== shape[a])) {
      throw new Error(`NiiVue reads ${dims.join('x')} voxels but the server stored ${shape.join('x')}; clicks would land wrong`);
    }
    base.cal_min = -160; // abdominal soft-tissue window (HU); right drag changes it
    base.cal_max = 240;
    for (const v of [...nv.volumes]) nv.removeVolume(v);
    nv.addVolume(base);
    nv.setSliceType(SLICE_TYPE.MULTIPLANAR);
    Object.assign(state, { base, overlay: null, imageId, result: null, lastClick: null });
    resetPrompts();
    showResultPanel();
    const spacing = base.hdr.pixDims.slice(1, 4).map((s) => +s.toFixed(2));
    $('image-info').textContent = `${imageId}: ${dims.join('×')} voxels, ${spacing.join('×')} mm`;
    setStatus('Pick classes or click on the image.');
    syncControls();
  }

  async function uploadAndShow(file) {
    if (!/\.(nii|nii\.gz|nrrd)$/i.test(file.name)) throw new Error(`${file.name}: open a .nii, .nii.gz or .nrrd file`);
    const id = file.name.replace(/\.(nii|nii\.gz|nrrd)$/i, '').replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 200) || 'image';
    const form = new FormData();
    form.append('file', file, file.name);
    form.append('params', '{}');
    setStatus(`Uploading ${file.name}…`, true);
    const stored = await (await api('PUT', `datastore/?image=${encodeURIComponent(id)}`, form)).json();
    await showImage(await file.arrayBuffer(), file.name, stored.image, stored.shape);
    await listStored();
  }

  async function openStored(id) {
    setStatus(`Opening ${id}…`, true);
    const reply = await api('GET', `datastore/image?image=${encodeURIComponent(id)}`);
    const name = /filename="?([^";]+)"?/.exec(reply.headers.get('content-disposition') || '')?.[1] || 'image.nii.gz';
    const store = await (await api('GET', 'datastore/?output=all')).json();
    await showImage(await reply.arrayBuffer(), name, id, store.objects[id]?.image?.info?.shape);
  }

  // ---- world (mm) <-> stored voxel indices ------------------------------------------------------

  /** RAS mm -> fractional (i, j, k) of the stored array, by the file's own affine (NiiVue keeps the
   * header's voxel->RAS matrix in hdr.affine; its internal voxels are reoriented, so not used). */
  function mmToIjk(mm) {
    const a = state.base.hdr.affine; // 4 rows, voxel -> RAS mm
    const m = [0, 1, 2].map((r) => [a[r][0], a[r][1], a[r][2]]);
    const d = [0, 1, 2].map((r) => mm[r] - a[r][3]);
    const det3 = (x) => x[0][0] * (x[1][1] * x[2][2] - x[1][2] * x[2][1])
      - x[0][1] * (x[1][0] * x[2][2] - x[1][2] * x[2][0]) + x[0][2] * (x[1][0] * x[2][1] - x[1][1] * x[2][0]);
    const column = (c) => m.map((row, r) => row.map((v, k) => (k === c ? d[r] : v)));
    return [0, 1, 2].map((c) => det3(column(c)) / det3(m)); // Cramer's rule
  }

  const inside = (ijk) => ijk.every((v, a) => v >= 0 && v < state.base.hdr.dims[a + 1]);

  // ---- prompts ------------------------------------------------------------------------------------

  /** A left click in point mode: NiiVue has moved its crosshair to the clicked position. */
  function onMouseUp(ui) {
    if (!state.base || ui.mouseButtonRightDown || ui.mouseButtonCenterDown || selectedMode() === 'box') return;
    if (!capabilities(model()).clicks || $('everything').checked) return;
    const mm = Array.from(nv.frac2mm(nv.scene.crosshairPos, 0, true)).slice(0, 3);
    const ijk = mmToIjk(mm).map(Math.round);
    if (!inside(ijk)) return; // a click beside the image
    const value = state.base.getValue(...state.base.mm2vox(mm)); // NiiVue's own sampling, for checks
    state.lastClick = { ijk, mm, value };
    state.actions.push({ kind: 'point', ijk, mm, positive: selectedMode() === 'positive' });
    promptsChanged();
  }

  /** A drag in box mode: the in-plane rectangle, as deep as its shorter side, centred on the slice. */
  function onDragRelease(drag) {
    if (!state.base || selectedMode() !== 'box' || drag.tileIdx < 0) return;
    const axis = [2, 1, 0][drag.axCorSag]; // axial, coronal, sagittal -> the RAS axis across the view
    const a = Array.from(drag.mmStart).slice(0, 3);
    const b = Array.from(drag.mmEnd).slice(0, 3);
    const sides = [0, 1, 2].filter((x) => x !== axis).map((x) => Math.abs(a[x] - b[x]));
    const half = Math.min(...sides) / 2;
    if (half === 0) return;
    const corners = [];
    for (const x of [a[0], b[0]]) for (const y of [a[1], b[1]]) for (const z of [a[2], b[2]]) {
      for (const s of [-half, half]) {
        const p = [x, y, z];
        p[axis] = a[axis] + s;
        corners.push(mmToIjk(p));
      }
    }
    const roi = [];
    for (let ax = 0; ax < 3; ax++) {
      const size = state.base.hdr.dims[ax + 1];
      const values = corners.map((c) => c[ax]);
      roi.push(Math.max(0, Math.round(Math.min(...values))), Math.min(size - 1, Math.round(Math.max(...values))));
    }
    state.actions = state.actions.filter((x) => x.kind !== 'box'); // one box at a time
    state.actions.push({ kind: 'box', roi, mm: [a, b] });
    promptsChanged();
  }

  function resetPrompts() {
    state.actions = [];
    renderClicks();
  }

  /** Mark the clicks on NiiVue's drawing layer (a 3-voxel cross each: green positive, red negative). */
  function drawMarkers() {
    if (!state.base) return;
    nv.createEmptyDrawing();
    for (const x of state.actions.filter((a) => a.kind === 'point')) {
      const v = Array.from(state.base.mm2vox(x.mm)); // NiiVue's drawing is on its RAS-reoriented grid
      for (const [dx, dy, dz] of [[0, 0, 0], [-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]]) {
        nv.drawPt(v[0] + dx, v[1] + dy, v[2] + dz, x.positive ? 2 : 1);
      }
    }
    nv.refreshDrawing(true);
  }

  function renderClicks() {
    drawMarkers();
    $('clicks').replaceChildren(...state.actions.map((x) => {
      const li = document.createElement('li');
      li.textContent = x.kind === 'box' ? `box i ${x.roi[0]}–${x.roi[1]}, j ${x.roi[2]}–${x.roi[3]}, k ${x.roi[4]}–${x.roi[5]}`
        : `${x.positive ? '+' : '−'} (${x.ijk.join(', ')})`;
      return li;
    }));
    syncControls();
  }

  function hasPrompts() {
    const m = model();
    return state.actions.length > 0 || (m.type !== 'deepgrow' && ($('everything').checked || selectedClasses().length > 0));
  }

  function promptsChanged() {
    renderClicks();
    if (hasPrompts()) run();
    else clearOverlay();
  }

  /** The /infer params of the current prompts, in the fields of the model's MONAI Label type. */
  function inferParams() {
    const m = model();
    const params = { result_extension: '.nii.gz', result_dtype: 'uint16' };
    const points = state.actions.filter((x) => x.kind === 'point');
    const box = state.actions.find((x) => x.kind === 'box');
    const classes = $('everything').checked ? [] : selectedClasses();
    if (m.type === 'vista3d') {
      if (classes.length) params.label_prompt = classes.map((n) => m.labels[n]);
      if (points.length) {
        params.points = points.map((x) => x.ijk);
        params.point_labels = points.map((x) => (x.positive ? 1 : 0));
      }
    } else if (m.type === 'segmentation') {
      if (classes.length) params.labels = classes;
    } else {
      params.foreground = points.filter((x) => x.positive).map((x) => x.ijk);
      params.background = points.filter((x) => !x.positive).map((x) => x.ijk);
      if (classes.length) params.label = classes[0];
      if (box) params.roi = box.roi;
    }
    return params;
  }

  // ---- inference and the overlay ----------------------------------------------------------------

  /** Run the current prompts; prompts given while a request runs are sent when it ends. */
  async function run() {
    if (!state.imageId) return;
    if (state.busy) { state.again = true; return; }
    state.busy = true;
    try {
      do {
        state.again = false;
        await runOnce();
      } while (state.again);
    } finally {
      state.busy = false;
      syncControls();
    }
  }

  async function runOnce() {
    const name = $('model').value;
    const imageId = state.imageId;
    const form = new FormData();
    form.append('params', JSON.stringify(inferParams()));
    setStatus(`Segmenting with ${name}…`, true);
    showError(null);
    const started = performance.now();
    try {
      const reply = await api('POST', `infer/${encodeURIComponent(name)}?image=${encodeURIComponent(imageId)}`, form);
      const parts = await reply.formData(); // multipart: a "params" JSON part and the label file
      if (state.imageId !== imageId || $('model').value !== name) return; // another image or model now
      const params = JSON.parse(parts.get('params'));
      const file = [...parts.values()].find((v) => v instanceof File);
      if (!file) throw new Error('the server sent no label file');
      state.requests += 1;
      await showOverlay(await file.arrayBuffer(), params, file, (performance.now() - started) / 1000);
    } catch (err) {
      showError(err);
      setStatus('The request failed.');
    }
  }

  /** Label colormap for the SHOWN indices 1..N (see showOverlay): index n is the n-th name of
   * label_names, in the colour of the catalog class of that name (any model kind). */
  function labelColormap(names) {
    const cm = { R: [0], G: [0], B: [0], A: [0], I: [0], labels: [''] };
    names.forEach((name, n) => {
      const rgb = colorOf(name, n);
      cm.R.push(rgb[0]); cm.G.push(rgb[1]); cm.B.push(rgb[2]); cm.A.push(255); cm.I.push(n + 1);
      cm.labels.push(name);
    });
    return cm;
  }

  const colorOf = (name, n) => state.catalog.get(name)?.color || FALLBACK[n % FALLBACK.length];

  async function showOverlay(bytes, params, file, seconds) {
    const overlay = await NVImage.new(bytes, file.name);
    const labelNames = params.label_names || {};
    const names = Object.keys(labelNames);
    // Counts per value as the server sent them; then each value is shown as its rank 1..N in
    // label_names (a value outside them as N+1): NiiVue 0.69 tints value-0 voxels when a label
    // table spans a wide range such as VISTA3D class ids up to 132. The download keeps the
    // server's file as it came.
    const rank = new Map(names.map((name, n) => [labelNames[name], n + 1]));
    const counts = {};
    const img = overlay.img;
    for (let n = 0; n < img.length; n++) {
      const v = img[n];
      if (!v) continue;
      counts[v] = (counts[v] || 0) + 1;
      img[n] = rank.get(v) ?? names.length + 1;
    }
    if (Object.keys(counts).some((v) => !rank.has(Number(v)))) names.push('unnamed value');
    overlay.setColormapLabel(labelColormap(names));
    overlay.opacity = Number($('opacity').value);
    if (state.overlay) nv.removeVolume(state.overlay);
    nv.addVolume(overlay);
    if (state.result?.url) URL.revokeObjectURL(state.result.url);
    state.overlay = overlay;
    state.result = { labelNames, counts, params, url: URL.createObjectURL(file), seconds };
    showResultPanel();
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    setStatus(total ? `Done: ${Object.keys(counts).length} structure(s), ${total} voxels.` : 'Done: the result is empty.');
  }

  function clearOverlay() {
    if (state.overlay) nv.removeVolume(state.overlay);
    state.overlay = null;
    state.result = null;
    showResultPanel();
  }

  function showResultPanel() {
    const r = state.result;
    $('download').hidden = !r;
    if (r) {
      $('download').href = r.url;
      $('download').download = `${state.imageId}_label.nii.gz`;
    }
    const lat = r?.params.latencies || {};
    $('timing').textContent = !r ? '' : `request ${r.seconds.toFixed(2)} s (server: infer ${lat.infer} s, `
      + `wait ${lat.wait} s); session ${r.params.session_reused ? 'reused' : 'new'}`;
    const ml = state.base ? state.base.hdr.pixDims.slice(1, 4).reduce((a, b) => a * b, 1) / 1000 : 0;
    const present = r ? Object.entries(r.labelNames).filter(([, v]) => r.counts[v]) : [];
    $('legend').replaceChildren(...present.map(([name, value]) => {
      const li = document.createElement('li');
      const swatch = document.createElement('span');
      const rgb = colorOf(name, Object.keys(r.labelNames).indexOf(name));
      swatch.className = 'swatch';
      swatch.style.background = `rgb(${rgb.join(',')})`;
      li.append(swatch, `${name} (${value}): ${(r.counts[value] * ml).toFixed(1)} ml`);
      return li;
    }));
  }

  // ---- wiring ---------------------------------------------------------------------------------

  /** Run an async UI action; its error shows in the page. */
  const guarded = (action) => async (...args) => {
    showError(null);
    try { await action(...args); } catch (err) { showError(err); setStatus('Failed.'); }
  };

  $('token-form').addEventListener('submit', guarded(async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token').value);
    await connect();
  }));
  $('file').addEventListener('change', guarded(async () => {
    if ($('file').files[0]) await uploadAndShow($('file').files[0]);
  }));
  $('open-stored').addEventListener('click', guarded(() => openStored($('stored').value)));
  $('model').addEventListener('change', () => { modelChanged(); clearOverlay(); });
  $('class-search').addEventListener('input', filterClasses);
  $('classes').addEventListener('change', () => { if (state.actions.length) promptsChanged(); }); // else: "Segment"
  $('everything').addEventListener('change', () => { resetPrompts(); syncControls(); });
  $('run').addEventListener('click', guarded(async () => {
    if (hasPrompts()) await run();
    else showError('Pick classes, "Everything" or click on the image first.');
  }));
  $('undo').addEventListener('click', () => { state.actions.pop(); promptsChanged(); });
  $('clear').addEventListener('click', () => { resetPrompts(); clearOverlay(); });
  $('opacity').addEventListener('input', () => {
    if (!state.overlay) return;
    state.overlay.opacity = Number($('opacity').value);
    nv.updateGLVolume();
  });
  $('modes').addEventListener('change', syncControls);
  nv.onMouseUp = onMouseUp;
  nv.onDragRelease = onDragRelease;
  nv.onLocationChange = (loc) => { $('location').textContent = loc.string; };

  // ---- test hook ------------------------------------------------------------------------------

  window.voxelprompt = {
    nv,
    ready: (async () => { await nv.attachToCanvas($('gl')); await connect(); })().catch(showError),
    /** A JSON snapshot for tests: what was asked, what came back, whether a request runs. */
    snapshot: () => ({
      busy: state.busy, requests: state.requests, error: state.error, imageId: state.imageId,
      model: state.info ? $('model').value : null, params: state.imageId ? inferParams() : null,
      lastClick: state.lastClick, actions: state.actions,
      labelNames: state.result?.labelNames ?? null, counts: state.result?.counts ?? null,
      latencies: state.result?.params.latencies ?? null, sessionReused: state.result?.params.session_reused ?? null,
      reply: state.result?.params ?? null,
    }),
  };
})();
