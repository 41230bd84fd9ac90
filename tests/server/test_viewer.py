"""The browser viewer (``voxelprompt/server/viewer/``, NiiVue) in Debian's chromium, driven by
Playwright's Python package against the real server on loopback (``demo_server``).

No browser is downloaded: ``playwright install`` is never run; the test uses ``/usr/bin/chromium``
(``apt-get install -y chromium``) with SwiftShader's software WebGL2, and FAILS when it is missing.
The page's ``window.voxelprompt.snapshot()`` reports what it sent and got; every check of it is
repeated independently (the same request through the API, the NIfTI affine with nibabel).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

pytestmark = pytest.mark.slow  # a browser start, three model sessions and a few clicks on 2 CPU cores

CHROMIUM_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox"]
WAIT_MS = 180_000  # bound on one inference seen from the page (a busy 2-core machine)
LIVER = 1


def _chromium() -> str:
    path = os.environ.get("VOXELPROMPT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Debian's chromium is missing: `apt-get install -y chromium` (the viewer test never downloads a browser)")
    return path


@pytest.fixture(scope="module")
def browser():
    """One chromium for the module (Playwright's sync API; closed at the end)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser, demo_server):
    """A fresh page on the viewer (``/`` redirects to ``/viewer/``), connected to the server."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    elsewhere: list[str] = []  # the page and NiiVue load nothing from another origin (no CDN)
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("request", lambda r: None if r.url.startswith((demo_server.url, "blob:", "data:")) else elsewhere.append(r.url))
    page.goto(demo_server.url + "/")
    assert page.url == demo_server.url + "/viewer/"
    page.evaluate("window.voxelprompt.ready")
    yield page
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"
    assert not elsewhere, f"requests outside the server: {elsewhere}"


def snapshot(page) -> dict:
    return page.evaluate("window.voxelprompt.snapshot()")


def open_file(page, path: Path) -> dict:
    page.set_input_files("#file", str(path))
    page.wait_for_function(f"window.voxelprompt.snapshot().imageId === {json.dumps(path.name.split('.')[0])}", timeout=60_000)
    return snapshot(page)


def axial_point(page, fx: float, fy: float) -> tuple[float, float]:
    """The page position at fractions (fx, fy) of NiiVue's axial tile (CSS pixels)."""
    tile = page.evaluate("window.voxelprompt.nv.screenSlices.find(s => s.axCorSag === 0).leftTopWidthHeight")
    dpr = page.evaluate("window.devicePixelRatio")
    box = page.locator("#gl").bounding_box()
    left, top, width, height = (float(v) / dpr for v in tile)
    return box["x"] + left + fx * width, box["y"] + top + fy * height


def click_axial(page, fx: float = 0.42, fy: float = 0.55) -> dict:
    """Left-click the axial view at a fraction of its tile; wait until the page has its answer."""
    before = snapshot(page)["requests"]
    page.mouse.click(*axial_point(page, fx, fy))
    wait_answer(page, before)
    return snapshot(page)


def wait_answer(page, before: int) -> None:
    page.wait_for_function(
        f"(s => !s.busy && (s.requests > {before} || s.error))(window.voxelprompt.snapshot())", timeout=WAIT_MS
    )


def api_infer(url: str, model: str, image: str, params: dict) -> tuple[np.ndarray, dict]:
    """The same request through the API: the label map (output=image) and the reply's params."""

    def post(output: str):
        reply = _http(
            "POST", f"{url}/infer/{model}?image={image}&output={output}", fields={"params": json.dumps(params)}
        )  # fmt: skip
        assert reply.status == 200, reply.data[:300]
        return reply

    labels = nib.Nifti1Image.from_bytes(_gunzip(post("image").data))
    return np.asarray(labels.dataobj), json.loads(post("json").data)


def _http(method: str, url: str, **kwargs):
    """One HTTP request with urllib3 (the server's own dependency), bounded like the page's waits."""
    import urllib3

    return urllib3.request(method, url, timeout=urllib3.Timeout(connect=10, read=WAIT_MS / 1000), **kwargs)


def _gunzip(data: bytes) -> bytes:
    import gzip

    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _canvas(page, path: Path | None = None) -> np.ndarray:
    """The viewer's canvas as an (H, W, 3) int array (from ``path`` when given, else a new screenshot)."""
    from PIL import Image

    data = path.read_bytes() if path is not None else page.locator("#gl").screenshot()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def check_click_mapping(snap: dict, image: nib.Nifti1Image) -> None:
    """The click's stored voxel (i, j, k) lies within half a voxel of NiiVue's mm, by the file's
    affine, and holds the intensity NiiVue showed there."""
    click = snap["lastClick"]
    ijk = np.array(click["ijk"])
    centre = image.affine @ np.append(ijk, 1.0)
    half_voxel = np.abs(image.affine[:3, :3]).sum(axis=1) / 2 + 1e-3
    assert np.all(np.abs(centre[:3] - np.array(click["mm"])) <= half_voxel), (click, centre)
    assert np.asarray(image.dataobj)[tuple(ijk)] == pytest.approx(click["value"])


def test_click_shows_overlay_legend_and_undo(page, demo_server, real_ct_path, tmp_path):
    opened = open_file(page, real_ct_path)
    assert opened["model"] == "vista3d-demo" and opened["error"] is None
    page.check("#classes input[value='liver']")
    snap = click_axial(page)

    assert snap["error"] is None
    assert snap["params"]["label_prompt"] == [LIVER] and snap["params"]["point_labels"] == [1]
    assert snap["params"]["points"] == [snap["lastClick"]["ijk"]]
    check_click_mapping(snap, nib.load(real_ct_path))
    assert snap["labelNames"] == {"liver": LIVER} and snap["counts"][str(LIVER)] > 0
    assert set(snap["latencies"]) >= {"infer", "total"} and snap["sessionReused"] is False
    assert "liver" in page.locator("#legend").inner_text()
    assert "session new" in page.locator("#timing").inner_text()

    # The same request through the API: the same mask, voxel for voxel in count.
    labels, params = api_infer(demo_server.url, "vista3d-demo", snap["imageId"], snap["params"])
    assert labels.shape == nib.load(real_ct_path).shape
    values, counts = np.unique(labels[labels > 0], return_counts=True)
    assert {str(v): int(c) for v, c in zip(values, counts)} == snap["counts"]
    assert params["session_reused"] is True  # the page's click opened the session

    # The overlay is on screen in the liver's catalog colour (blended over grey CT).
    shot = tmp_path / "viewer.png"
    page.locator("#gl").screenshot(path=str(shot))
    rgb = _canvas(page, shot)
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 100  # a CT, not a blank canvas
    tinted = (rgb[..., 0] - rgb[..., 1] > 25) & (rgb[..., 0] - rgb[..., 2] > 25)  # liver (221, 130, 101) over grey
    assert tinted.sum() > 50

    # The download link holds the result (the same NIfTI bytes the page loaded).
    with page.expect_download() as info:
        page.click("#download")
    downloaded = nib.Nifti1Image.from_bytes(_gunzip(Path(info.value.path()).read_bytes()))
    assert np.array_equal(np.asarray(downloaded.dataobj), labels)

    # Undo: the last click goes and the page asks again with the class alone.
    before = snapshot(page)["requests"]
    page.click("#undo")
    wait_answer(page, before)
    undone = snapshot(page)
    assert undone["error"] is None and undone["actions"] == []
    assert "points" not in undone["params"] and undone["params"]["label_prompt"] == [LIVER]
    assert undone["sessionReused"] is True

    # Two classes with distant ids (1 and 115): the overlay colours their voxels only, the air
    # around the body stays as it is without the overlay (the opacity slider at 0).
    page.check("#classes input[value='heart']")
    before = snapshot(page)["requests"]
    page.click("#run")
    wait_answer(page, before)
    both = snapshot(page)
    assert both["error"] is None and set(both["labelNames"]) == {"liver", "heart"}
    shown = _canvas(page)
    page.evaluate("(s => { s.value = '0'; s.dispatchEvent(new Event('input')); })(document.getElementById('opacity'))")
    bare = _canvas(page)
    in_views = np.zeros(bare.shape[:2], dtype=bool)
    dpr = page.evaluate("window.devicePixelRatio")
    for left, top, width, height in page.evaluate("window.voxelprompt.nv.screenSlices.map(s => s.leftTopWidthHeight)"):
        in_views[int(top / dpr) + 2 : int((top + height) / dpr) - 2, int(left / dpr) + 2 : int((left + width) / dpr) - 2] = True
    air = in_views & (bare.max(axis=-1) < 30)  # black air around the body in the soft-tissue window
    assert air.mean() > 0.05
    assert (np.abs(shown - bare).sum(axis=-1)[air] > 6).mean() < 0.2
    assert (np.abs(shown - bare).sum(axis=-1) > 6).mean() > 0.005  # the structures are coloured


def test_busy_indicator_is_a_drawn_spinner_not_a_font_glyph(page, real_ct_path):
    """While a request runs the status line shows a spinner drawn by CSS: a box of non-zero size
    holding no character (an emoji glyph was an empty box in Debian's chromium), in the accent
    colour on screen; it goes when the answer comes."""
    from PIL import Image

    open_file(page, real_ct_path)
    page.check("#classes input[value='liver']")
    before = snapshot(page)["requests"]
    page.click("#run")
    page.wait_for_function("document.getElementById('status').classList.contains('busy')", timeout=WAIT_MS)
    style = page.evaluate(
        "(s => ({content: s.content, width: s.width, height: s.height, display: s.display}))"
        "(getComputedStyle(document.getElementById('status'), '::before'))"
    )
    shot = page.locator("#status").screenshot(animations="disabled")
    wait_answer(page, before)
    assert style["content"] in ('""', "''"), style  # no character, so nothing for a font to miss
    assert style["display"] == "inline-block" and float(style["width"].removesuffix("px")) >= 8, style
    assert float(style["height"].removesuffix("px")) >= 8, style
    rgb = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(int)
    accent = (rgb[..., 2] > 200) & (rgb[..., 2] - rgb[..., 0] > 60)  # the spinner's #9cf arc
    assert accent[:, : rgb.shape[0] * 2].sum() >= 4, "no spinner drawn at the start of the status line"
    done = page.evaluate("getComputedStyle(document.getElementById('status'), '::before').content")
    assert done == "none" and snapshot(page)["error"] is None


def test_clicks_map_to_stored_voxels_of_a_reoriented_image(page, demo_server, real_ct_path, tmp_path):
    """NiiVue shows every image in RAS; a click must still name the STORED array's i, j, k. The
    same CT stored as P-L-S (axes swapped, two flipped) is clicked at the same screen point."""
    original = nib.load(real_ct_path)
    turned = original.as_reoriented(nib.orientations.ornt_transform(
        nib.orientations.io_orientation(original.affine), nib.orientations.axcodes2ornt(("P", "L", "S"))
    ))  # fmt: skip
    turned_path = tmp_path / "ct_pls.nii.gz"
    nib.save(turned, turned_path)
    assert nib.aff2axcodes(turned.affine) == ("P", "L", "S")

    open_file(page, real_ct_path)
    first = click_axial(page, 0.5, 0.4)
    opened = open_file(page, turned_path)
    assert opened["actions"] == []  # a new image starts without prompts
    second = click_axial(page, 0.5, 0.4)

    for snap, image in ((first, original), (second, turned)):
        assert snap["error"] is None
        check_click_mapping(snap, image)
    # The same world point (NiiVue's scene is in RAS mm for both) ...
    assert np.allclose(first["lastClick"]["mm"], second["lastClick"]["mm"], atol=0.01)
    # ... is a different stored voxel, the one the reorientation moved it to.
    world = original.affine @ np.append(first["lastClick"]["ijk"], 1.0)
    expected = np.rint(np.linalg.solve(turned.affine, world)[:3]).astype(int)
    assert second["lastClick"]["ijk"] == expected.tolist() != first["lastClick"]["ijk"]
    assert second["params"]["points"] == [second["lastClick"]["ijk"]]


def test_box_on_a_stored_image_becomes_a_roi(page, demo_server, real_ct_path):
    """A drag in box mode becomes the deepgrow ``roi`` [i0, i1, j0, j1, k0, k1] of the stored image.
    The demo VISTA3D has no box prompt (SegVol has), so the box control is enabled by hand here;
    the server then keeps the class's voxels inside the roi (``roi_used: crop``)."""
    stored = json.loads(_http("GET", f"{demo_server.url}/datastore/?output=ids").data)["images"]
    if "example_ct_sm" not in stored:  # (a re-upload would drop the session an earlier test opened)
        api_upload(demo_server.url, "example_ct_sm", real_ct_path)
        page.reload()  # lists the image just stored
    page.evaluate("window.voxelprompt.ready")
    page.select_option("#stored", "example_ct_sm")
    page.click("#open-stored")
    page.wait_for_function("window.voxelprompt.snapshot().imageId === 'example_ct_sm'", timeout=60_000)
    page.select_option("#model", "vista3d-demo-interactive")
    page.check("#classes input[value='liver']")
    assert page.locator("#mode-box").is_disabled()  # VISTA3D's family has no boxes
    page.evaluate("document.getElementById('mode-box').disabled = false")
    page.check("#mode-box")

    page.mouse.move(*axial_point(page, 0.3, 0.35))
    page.mouse.down()
    page.mouse.move(*axial_point(page, 0.45, 0.5), steps=5)
    page.mouse.move(*axial_point(page, 0.6, 0.65), steps=5)
    page.mouse.up()
    wait_answer(page, 0)
    snap = snapshot(page)
    assert snap["error"] is None and snap["reply"]["roi_used"] == "crop"
    (action,) = snap["actions"]
    roi = action["roi"]
    assert snap["params"]["roi"] == roi and snap["params"]["label"] == "liver"

    # The dragged corners (NiiVue's mm) fall inside the roi, by the stored image's own affine.
    image = nib.load(real_ct_path)
    for mm in action["mm"]:
        ijk = np.linalg.solve(image.affine, np.append(mm, 1.0))[:3]
        assert all(roi[2 * a] - 1 <= ijk[a] <= roi[2 * a + 1] + 1 for a in range(3)), (ijk, roi)
    # The server's file (the page's download link): the mask lies inside the roi, as counted.
    with page.expect_download() as info:
        page.click("#download")
    labels = np.asarray(nib.Nifti1Image.from_bytes(_gunzip(Path(info.value.path()).read_bytes())).dataobj)
    inside = np.zeros(labels.shape, dtype=bool)
    inside[roi[0] : roi[1] + 1, roi[2] : roi[3] + 1, roi[4] : roi[5] + 1] = True
    assert labels[inside].any() and not labels[~inside].any()
    assert snap["counts"] == {"1": int((labels == 1).sum())}


def api_upload(url: str, image: str, path: Path) -> dict:
    """Store ``path`` under ``image`` through the API; its reply."""
    reply = _http("PUT", f"{url}/datastore/?image={image}", fields={"file": (path.name, path.read_bytes()), "params": "{}"})
    assert reply.status == 200, reply.data[:300]
    return json.loads(reply.data)


def test_bad_requests_show_the_server_detail(page, demo_server, real_ct_path, tmp_path):
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(b"not a NIfTI file at all")
    page.set_input_files("#file", str(corrupt))
    page.wait_for_function("window.voxelprompt.snapshot().error", timeout=60_000)
    reply = _http("PUT", f"{demo_server.url}/datastore/?image=corrupt2", fields={
        "file": ("corrupt.nii.gz", corrupt.read_bytes()), "params": "{}",
    })  # fmt: skip
    assert 400 <= reply.status < 500
    detail = json.loads(reply.data)["detail"]
    assert page.locator("#error").is_visible()
    shown = page.locator("#error").inner_text()
    assert shown == snapshot(page)["error"]
    assert shown == detail and ".upload-" not in detail  # the same one line, naming the file, not a temporary

    # An image deleted on the server: the click's request fails with the server's one line.
    doomed = tmp_path / "doomed_ct.nii.gz"
    shutil.copyfile(real_ct_path, doomed)
    snap = open_file(page, doomed)
    _http("DELETE", f"{demo_server.url}/datastore/?id={snap['imageId']}")
    failed = click_axial(page)
    assert failed["error"] and snap["imageId"] in failed["error"]
    assert page.locator("#error").inner_text() == failed["error"]


def test_token_is_asked_when_the_api_answers_401(page, demo_server):
    """With ``--token`` the API answers 401 to a request without it; the page asks for the token,
    keeps it in sessionStorage and sends it as a bearer token (the 401 is simulated in front of
    the demo server, whose token is off)."""
    token = "s3cret-token"
    seen: list[str | None] = []

    def guard(route):
        given = route.request.headers.get("authorization")
        seen.append(given)
        if given != f"Bearer {token}":
            route.fulfill(
                status=401, content_type="application/json", body=json.dumps({"detail": "missing or wrong bearer token"})
            )
        else:
            route.continue_()

    page.route("**/info/", guard)
    page.reload()
    page.evaluate("window.voxelprompt.ready")
    assert page.locator("#token-form").is_visible()
    assert page.locator("#error").inner_text() == "missing or wrong bearer token"
    page.fill("#token", token)
    page.click("#token-form button")
    page.wait_for_function("document.getElementById('model').options.length > 0", timeout=30_000)
    assert seen[-1] == f"Bearer {token}" and page.locator("#token-form").is_hidden()
    assert page.evaluate("sessionStorage.getItem('voxelprompt-token')") == token


def test_the_demo_model_is_marked_by_a_banner(page, demo_server):
    """The demo server serves the shipped demo model: a visible banner says its labels on a real CT
    mean nothing (the model entry's ``demo`` in /info/)."""
    page.wait_for_function("document.getElementById('model').options.length > 0", timeout=30_000)
    banner = page.locator("#demo-banner")
    assert banner.is_visible()
    assert "DEMO model" in banner.inner_text() and "not meaningful" in banner.inner_text()
