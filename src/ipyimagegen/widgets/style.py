"""The studio's few CSS rules, shipped as a ``<style>`` inside an HTML widget.

A ``<style>`` element in an HTML widget applies in JupyterLab, Notebook 7, Voila and VS Code
without a front-end extension. Every rule is scoped to ``.ipyimagegen-studio`` (or to a
class the widgets set), so nothing else on the page changes.
"""

from __future__ import annotations

import ipywidgets as widgets

THUMBNAIL_SIDE = 256

CSS = """
.ipyimagegen-studio { max-width: 100%; container-type: inline-size; container-name: ipyimagegen-studio; }
/* One column on a narrow page; on a wide one the controls in a column beside the work: the results
   (Generate, Variations) or the painter (Edit). */
.ipyimagegen-studio-body { grid-template-columns: minmax(0, 1fr); gap: 8px 20px; align-items: start; }
.ipyimagegen-edit-layout {
  grid-template-columns: minmax(0, 1fr); gap: 2px 20px; align-items: start;
  grid-template-areas: "input" "painter" "prompt" "run" "settings";
  --ipyimagegen-painter-reserve: 330px;
}
.ipyimagegen-area-input { grid-area: input; }
.ipyimagegen-area-prompt { grid-area: prompt; }
.ipyimagegen-area-run { grid-area: run; }
.ipyimagegen-area-painter { grid-area: painter; }
.ipyimagegen-area-settings { grid-area: settings; }
@container ipyimagegen-studio (min-width: 1100px) {
  .ipyimagegen-studio-body.ipyimagegen-work-beside { grid-template-columns: 450px minmax(0, 1fr); }
  .ipyimagegen-edit-layout {
    grid-template-columns: 450px minmax(0, 1fr); grid-template-rows: auto auto auto auto 1fr;
    grid-template-areas: "input painter" "prompt painter" "run painter" "settings painter" ". painter";
    --ipyimagegen-painter-reserve: 190px;
  }
}
.ipyimagegen-backend { font-size: 13px; color: var(--jp-ui-font-color1, #333); }
.ipyimagegen-backend .ipyimagegen-offline { color: var(--jp-warn-color1, #b36b00); }
.ipyimagegen-prompt textarea { font-family: var(--jp-content-font-family, sans-serif); font-size: 14px; }
.ipyimagegen-count { font-size: 12px; color: var(--jp-ui-font-color2, #666); white-space: nowrap; }
.ipyimagegen-count .ipyimagegen-over { color: var(--jp-error-color1, #c62828); font-weight: bold; }
.ipyimagegen-hint { font-size: 12px; color: var(--jp-ui-font-color2, #666); white-space: nowrap; }
.ipyimagegen-note { font-size: 12px; color: var(--jp-ui-font-color2, #666); }
.ipyimagegen-progress { font-size: 13px; font-variant-numeric: tabular-nums; }
.ipyimagegen-status { font-size: 13px; }
.ipyimagegen-status .ipyimagegen-error { color: var(--jp-error-color1, #c62828); }
.ipyimagegen-status .ipyimagegen-warning { color: var(--jp-warn-color1, #b36b00); }
.ipyimagegen-status .ipyimagegen-ok { color: var(--jp-success-color1, #2e7d32); }
.ipyimagegen-tile-image img, img.ipyimagegen-tile-image { object-fit: contain; }
.ipyimagegen-placeholder {
  display: flex; align-items: center; justify-content: center; width: 100%; height: 100%;
  background: var(--jp-layout-color3, #e0e0e0); color: var(--jp-ui-font-color2, #666); font-size: 13px;
}
.ipyimagegen-notice { font-size: 13px; }
.ipyimagegen-field-error { font-size: 13px; color: var(--jp-error-color1, #c62828); margin: 0 6px; }
.ipyimagegen-notice a { color: var(--jp-content-link-color, #1976d2); text-decoration: underline; }
.ipyimagegen-notice .ipyimagegen-error { color: var(--jp-error-color1, #c62828); }
.ipyimagegen-mask-painter .widget-label { white-space: normal; height: auto; line-height: 1.4; }
.ipyimagegen-n input { font-variant-numeric: tabular-nums; }
.ipyimagegen-coming-soon { color: var(--jp-ui-font-color2, #666); padding: 12px 4px; }
"""


def style_widget() -> widgets.HTML:
    """An invisible HTML widget that carries the studio's CSS."""
    return widgets.HTML(f"<style>{CSS}</style>", layout=widgets.Layout(display="none"))
