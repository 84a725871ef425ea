"""docs/notebook.png: two %%archdsl cells, run by a Jupyter kernel, exported to HTML by nbconvert
(JupyterLab's style) and photographed by headless Chromium. Run by hand, from the repository's
root, where nbconvert and chromium-headless-shell (apt-get) are installed; nothing tests it."""
import subprocess
import sys
import tempfile
from pathlib import Path

from nbclient import NotebookClient
from nbconvert import HTMLExporter
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
CELLS = ["%load_ext archdsl",
         "%%archdsl cnn\n" + "\n".join(line for line in (ROOT / "specs/simple_cnn.spec")
                                        .read_text().splitlines() if not line.startswith("#")),
         "%%archdsl\ninput 1x4x4\nConv(8, 3) -> Conv(8, 3) -> Conv(8, 3)"]


def main(out: Path = ROOT / "docs" / "notebook.png", width: int = 1000, height: int = 920):
    notebook = new_notebook(cells=[new_code_cell(source) for source in CELLS],
                            metadata={"kernelspec": {"name": "python3", "language": "python",
                                                     "display_name": "Python 3"}})
    NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(ROOT)}}).execute()
    page, _ = HTMLExporter(template_name="lab").from_notebook_node(notebook)
    with tempfile.TemporaryDirectory() as scratch:
        html = Path(scratch) / "notebook.html"
        html.write_text(page)
        subprocess.run(["chromium-headless-shell", "--no-sandbox", "--hide-scrollbars",
                        f"--window-size={width},{height}", f"--screenshot={out}",
                        html.as_uri()], check=True, capture_output=True, timeout=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:2]))
