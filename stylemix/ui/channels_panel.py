"""The Channels panel: rank one resolution's feature maps by how much taking each from the other
model changes the picture, then give the listed ones their own α (stylemix.channels)."""

from __future__ import annotations

import gradio as gr

from ..channels import block_channels, rank_channels
from ..errors import StylemixError
from .controls import Controls
from .services import QUIET, Services, noted, show_note

REGIONS = {"whole image": None, "upper half (eyes, hair)": (0, 0, 1, 0.5),
           "lower half (mouth, chin)": (0, 0.5, 1, 1), "centre (the face)": (0.25, 0.25, 0.75, 0.75),
           "left half": (0, 0, 0.5, 1), "right half": (0.5, 0, 1, 1)}

NO_CHANNELS = "No channel has its own α."


def parse_channel_list(text: str) -> list[int]:
    """'3, 17 42' → [3, 17, 42]; anything else is a clear error."""
    parts = [p for p in str(text or "").replace(",", " ").split() if p]
    try:
        return sorted({int(p) for p in parts})
    except ValueError:
        raise StylemixError(f"channels must be whole numbers separated by commas, not '{text}'") from None


class ChannelsPanel:
    """Built where the page wants the accordion."""

    def __init__(self, services: Services, controls: Controls, G=None):
        self.services, self.controls = services, controls
        res = G.block_resolutions if G is not None else []
        with gr.Accordion("Channels: blend single feature maps of one resolution", open=False):
            gr.Markdown("Find the channels of a resolution that change the picture most when taken "
                        "from the other model (optionally inside one area), then give just those "
                        "their own α. The rest of the block keeps its slider's α.")
            with gr.Row(equal_height=True):
                self.res = gr.Dropdown(res, value=res[len(res) // 2] if res else None, label="resolution (px)")
                self.region = gr.Dropdown(list(REGIONS), value="whole image", label="measure in")
                self.rank_button = gr.Button("rank channels")
            self.ranking = gr.Markdown()
            with gr.Row(equal_height=True):
                self.channel_list = gr.Textbox(label="channels (e.g. 3, 17, 42)", elem_id="channel-list")
                self.alpha = gr.Slider(0, 1, value=1, step=0.05, label="their α")
                self.apply_button = gr.Button("apply to these channels")
                self.clear_button = gr.Button("clear")
            self.status = gr.Markdown(NO_CHANNELS)
            self.note = gr.Markdown(elem_id="channels-note")

    @noted("channels")
    def rank(self, request: gr.Request, res, region, seed, psi, *values):
        current = self.controls.read(values)
        seeds = [int(seed) + i for i in range(4)]
        effects = rank_channels(current.toonifier.engine, current.spec, int(res), seeds, float(psi),
                                box=REGIONS.get(region), class_idx=current.class_idx)
        top = effects[:12]
        rows = "\n".join(f"| {e.channel} | {e.change:.3f} |" for e in top)
        block_alpha = current.spec.alphas(current.resolutions)[int(res)]
        suggested_alpha = 0.0 if block_alpha > 0.5 else 1.0
        table = (f"Most influential of the {len(effects)} channels at {int(res)} px "
                 f"({region}; mean pixel change when one channel is taken from the other model, "
                 f"seeds {seeds[0]}–{seeds[-1]}). The four strongest are filled in below:\n\n"
                 f"| channel | change |\n|---|---|\n{rows}")
        return {self.ranking: table, self.channel_list: ", ".join(str(e.channel) for e in top[:4]),
                self.alpha: suggested_alpha}

    @noted("channels")
    def apply(self, request: gr.Request, key, res, text, alpha):
        G = self.services.pair(key).G_base
        channels = parse_channel_list(text)
        if not channels:
            raise StylemixError("list at least one channel, e.g. 3, 17")
        count = block_channels(G, int(res))
        if channels[-1] >= count or channels[0] < 0:
            raise StylemixError(f"the {int(res)} px block has channels 0–{count - 1}")
        return {self.controls.channel_pick: {"res": int(res), "channels": channels, "alpha": float(alpha)},
                self.status: f"Channels {', '.join(map(str, channels))} of {int(res)} px take α = {float(alpha):g}."}

    def clear(self):
        return {self.controls.channel_pick: None, self.status: NO_CHANNELS, self.note: ""}

    def on_pair(self, key, toonifier) -> dict:
        res = toonifier.G_base.block_resolutions
        return {self.res: gr.update(choices=res, value=res[len(res) // 2]), self.status: NO_CHANNELS,
                self.ranking: "", self.note: ""}

    @property
    def pair_outputs(self) -> list:
        return [self.res, self.status, self.ranking, self.note]

    def wire(self, seed, psi) -> None:
        pick = self.controls.channel_pick
        ranked = self.rank_button.click(self.rank, [self.res, self.region, seed, psi, *self.controls.inputs],
                               [self.ranking, self.channel_list, self.alpha], show_progress="minimal",
                               show_progress_on=[self.ranking], api_name="rank_channels")
        applied = self.apply_button.click(self.apply, [self.controls.pair_key, self.res, self.channel_list, self.alpha],
                                [pick, self.status], show_progress="hidden", show_progress_on=QUIET,
                                api_name="set_channels")
        for event in (ranked, applied):
            show_note(event, self.services.notes, "channels", self.note)
        self.clear_button.click(self.clear, None, [pick, self.status, self.note], api_name="clear_channels")
