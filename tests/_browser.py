"""Open report files in a real headless Chromium (Debian's, through Playwright) and say what
a person would see: JavaScript errors, network requests, the figures Plotly drew, and a
screenshot with its pixel statistics.

Never downloads a browser: it runs ``/usr/bin/chromium`` (``apt-get install chromium``) and
fails, with the install command, when it cannot start it.

As a script it writes a screenshot of the top of a report (the README's picture)::

    python3 tests/_browser.py reports/llama3-8b-wse2-pareto.html reports/llama3-8b-wse2-pareto.png
"""

from __future__ import annotations

import base64
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]

#: What every Plotly div of the page holds once drawn: per figure the traces Plotly drew
#: (its ``_fullData``, with the arrays decoded: name, type, points, a heatmap's shape) and
#: how many SVG elements it made.
_FIGURES_JS = """() => [...document.querySelectorAll('.plotly-graph-div')].map(div => ({
    id: div.id,
    drawn: !!div._fullLayout && div.querySelector('svg.main-svg') !== null,
    svg_elements: div.querySelectorAll('svg.main-svg *').length,
    traces: (div._fullData || []).map(t => {
        const name = div.data[t.index].name;
        const out = {name: name === undefined ? null : name, type: t.type,
                     points: t.type === 'heatmap' ? t.z.length * t.z[0].length : (t.x || t.y || []).length};
        if (t.type === 'heatmap') out.shape = [t.z.length, t.z[0].length];
        return out;
    }),
}))"""

#: Decode a PNG (as a data URL) on a canvas: mean and standard deviation of the luminance
#: (0-255), the share of pixels darker than 200 ("ink") and the number of distinct colours.
_PIXELS_JS = """async (url) => {
    const img = new Image(); img.src = url; await img.decode();
    const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
    const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let sum = 0, sq = 0, ink = 0; const colours = new Set();
    for (let i = 0; i < d.length; i += 4) {
        const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
        sum += y; sq += y * y; ink += y < 200;
        if (colours.size < 100000) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    }
    const n = d.length / 4, mean = sum / n;
    return {width: c.width, height: c.height, mean: mean, std: Math.sqrt(Math.max(sq / n - mean * mean, 0)),
            ink: ink / n, colours: colours.size};
}"""


@dataclass
class PageView:
    """What opening a report showed: console errors, uncaught exceptions, every request the
    page made beyond its own file, the figures (see ``_FIGURES_JS``), the screenshot's pixel
    statistics and its bytes (PNG)."""

    console_errors: list[str]
    page_errors: list[str]
    requests: list[str]
    figures: list[dict[str, Any]]
    pixels: dict[str, float]
    screenshot: bytes

    def figure(self, name: str) -> dict[str, Any]:
        """The figure whose div is ``fig-<name>``."""
        matches = [f for f in self.figures if f["id"] == f"fig-{name}"]
        assert matches, f"no figure {name!r} on the page: {[f['id'] for f in self.figures]}"
        return matches[0]


class Browser:
    """A headless Chromium; :meth:`open` loads a report file and looks at it."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        except Exception as exc:
            self._playwright.stop()
            raise RuntimeError(f"cannot start {CHROMIUM} ({str(exc).splitlines()[0]}); install it with "
                               "`apt-get install chromium` (plummer never downloads a browser)") from exc

    def open(self, path: str | Path, width: int = 1400, height: int = 900, full_page: bool = False,
             clip_height: int | None = None, figure: str | None = None) -> PageView:
        """Load ``path`` (network blocked and recorded), wait until every figure is drawn,
        and take a screenshot: of the figure ``fig-<figure>`` if given, else of the
        viewport, the whole page, or its top ``clip_height`` pixels."""
        url = Path(path).resolve().as_uri()
        page = self._browser.new_page(viewport={"width": width, "height": height})
        console: list[str] = []
        errors: list[str] = []
        requests: list[str] = []
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        def route(r: Any) -> None:
            if r.request.url == url:
                r.continue_()
            else:  # nothing else may be fetched: record it and refuse
                requests.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        try:
            page.goto(url, wait_until="load")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.plotly-graph-div')].every("
                "d => d._fullLayout && d.querySelector('svg.main-svg'))", timeout=30_000)
            figures = page.evaluate(_FIGURES_JS)
            if figure is not None:
                shot = page.locator(f"#fig-{figure}").screenshot()
            elif clip_height is not None:
                shot = page.screenshot(full_page=True, clip={"x": 0, "y": 0, "width": width, "height": clip_height})
            else:
                shot = page.screenshot(full_page=full_page)
            data_url = "data:image/png;base64," + base64.b64encode(shot).decode()
            pixels = self._browser_pixels(data_url)
        finally:
            page.close()
        return PageView(console, errors, requests, figures, pixels, shot)

    def _browser_pixels(self, data_url: str) -> dict[str, float]:
        page = self._browser.new_page()
        try:
            return page.evaluate(_PIXELS_JS, data_url)
        finally:
            page.close()

    def close(self) -> None:
        """Close the browser."""
        self._browser.close()
        self._playwright.stop()


def main(argv: list[str]) -> int:
    """``_browser.py REPORT.html OUT.png [HEIGHT]``: a 1400-pixel-wide screenshot of the top
    ``HEIGHT`` pixels (default 1800) of a report."""
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    browser = Browser()
    try:
        view = browser.open(argv[0], clip_height=int(argv[2]) if len(argv) == 3 else 1800)
    finally:
        browser.close()
    if view.console_errors or view.page_errors or view.requests:
        print(f"errors: {view.console_errors + view.page_errors}; requests: {view.requests}", file=sys.stderr)
        return 1
    Path(argv[1]).write_bytes(view.screenshot)
    print(f"wrote {argv[1]} ({view.pixels['width']}x{view.pixels['height']} pixels)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
