"""stylemix web app: blend a model pair by resolution, and toonify a photo with the blend.

    python app.py [--base P --transfer P --device D --host H --port N --share --max-batch N]  (--help says more)

The page itself lives in stylemix/ui; this file only reads the command line and serves it.
"""

from __future__ import annotations

import argparse
import logging

import torch

from stylemix import default_pair
from stylemix.render_batch import MAX_BATCH
from stylemix.ui import build_demo, render_triptych  # noqa: F401  (re-exported for scripts)

DEFAULT_BASE = default_pair.default_base()
DEFAULT_TRANSFER = default_pair.default_transfer()


def main() -> None:
    parser = argparse.ArgumentParser(description="stylemix web app")
    parser.add_argument("--base", default=str(DEFAULT_BASE),
                        help="the base model every visitor starts on (any format stylemix reads; default: the shipped pair's)")
    parser.add_argument("--transfer", default=str(DEFAULT_TRANSFER),
                        help="the transferred model fine-tuned from the base (default: the shipped pair's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to serve on (default 127.0.0.1; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=7860, help="port to serve on (default 7860)")
    parser.add_argument("--share", action="store_true", help="also open a public Gradio link")
    parser.add_argument("--max-upload-mb", type=int, default=1024,
                        help="largest model file a visitor may upload (default 1024)")
    parser.add_argument("--compile", action="store_true",
                        help="render through torch.compile: a one-off compile per image batch size "
                             "when first used, then faster renders (1.7x on a 64 px pair on CPU; bench/RESULTS.md)")
    parser.add_argument("--max-batch", type=int, default=None,
                        help="visitors' slider moves that arrive together are rendered in one pass of up "
                             f"to this many (default {MAX_BATCH} on a GPU; 1 on a CPU, where batching does "
                             "not pay: bench/RESULTS.md); large models batch fewer, as the stacked weights "
                             "of one pass are kept under 512 MB")
    args = parser.parse_args()
    if args.max_batch is not None and args.max_batch < 1:
        parser.error(f"--max-batch must be at least 1, not {args.max_batch}")
    # One line per user error (stylemix.app); Gradio's own start-up banner is replaced below.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    demo = build_demo(args.base, args.transfer, args.device, max_upload_mb=args.max_upload_mb,
                      compile=args.compile, max_batch=args.max_batch)
    try:
        demo.queue().launch(server_name=args.host, server_port=args.port, share=args.share,
                            max_file_size=f"{args.max_upload_mb}mb", quiet=True, prevent_thread_lock=True)
    except OSError as exc:  # e.g. the port is taken: one line, as every stylemix mistake
        raise SystemExit(f"stylemix app: cannot serve on {args.host}:{args.port} ({str(exc).splitlines()[0]}); "
                         "pick another --port") from None
    print(f"stylemix app running on {demo.local_url}", flush=True)
    print(f"public link: {demo.share_url}" if args.share and demo.share_url
          else "(add --share for a public link)", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
