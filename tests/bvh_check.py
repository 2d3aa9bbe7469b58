"""Check a BVH file of ours with an independent reader: bvhio (PyPI) parses it and
computes every joint's world position per frame; they must match the positions
`pipe export positions` wrote (MMM axes, metres) within 1 mm, after the documented
axis change (BVH X, Y, Z = MMM x, z, -y).

usage: python bvh_check.py FILE.bvh POSITIONS.npy NAME,NAME,...   (prints JSON)
"""
import json
import sys

import bvhio
import numpy as np

bvh_path, pos_path, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
ours = np.load(pos_path)  # [frames, points, 3], MMM x, y, z in m
assert ours.shape[1] == len(names), (ours.shape, len(names))
want = np.stack([ours[..., 0], ours[..., 2], -ours[..., 1]], axis=-1)
h = bvhio.readAsHierarchy(bvh_path)
frames = len(h.Keyframes) if hasattr(h, "Keyframes") else ours.shape[0]
worst = 0.0
checked = 0
joints = None
for f in range(ours.shape[0]):
    pose = h.loadPose(f)
    layout = list(pose.layout())
    if joints is None:
        joints = [j.Name for j, _, _ in layout]
        missing = [j for j in joints if j not in names]
        assert not missing, f"bvhio found joints we did not export: {missing}"
    for j, _, _ in layout:
        p = j.PositionWorld
        d = np.linalg.norm(np.array([p.x, p.y, p.z]) - want[f, names.index(j.Name)])
        worst = max(worst, float(d))
        checked += 1
print(json.dumps({"frames": ours.shape[0], "joints": joints, "checked": checked,
                  "worst_mm": worst * 1000.0}))
sys.exit(0 if worst < 1e-3 else 1)
