"""The inverse-operator configurations the equivalence tests share (MNE-Python's and minnorm's)."""

# name → (forward fixture, make_inverse_operator options, pick_oris to test)
CONFIGS = {
    "surf-meg-loose": ("fwd_surf_meg", dict(loose=0.2, depth=0.8), [None, "normal", "vector"]),
    "surf-meg-free": ("fwd_surf_meg", dict(loose=1.0, depth=0.8), [None, "normal", "vector"]),
    "surf-meg-fixed": ("fwd_surf_meg", dict(fixed=True), [None, "vector"]),
    "surf-meg-fixed-nodepth": ("fwd_surf_meg", dict(fixed=True, depth=None), [None]),
    "surf-meg-loose-nodepth-nocps": ("fwd_surf_meg", dict(loose=0.4, depth=None, use_cps=False),
                                     [None, "normal"]),
    "surf-meg-depthdict": ("fwd_surf_meg", dict(depth=dict(exp=0.5, limit=5.0)), [None]),
    "surf-meeg-loose": ("fwd_surf_meeg", dict(), [None, "normal", "vector"]),
    "surf-meeg-fixed-rankinfo": ("fwd_surf_meeg", dict(fixed=True, rank="info"), [None]),
    "vol-meg": ("fwd_vol_meg", dict(), [None, "vector"]),
    "vol-meeg-nodepth": ("fwd_vol_meeg", dict(depth=None), [None, "vector"]),
    "mixed-meg": ("fwd_mixed_meg", dict(), [None, "vector"]),
    "discrete-meg-loose": ("fwd_discrete_meg", dict(loose=0.3), [None, "normal", "vector"]),
}
