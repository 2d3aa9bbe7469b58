"""Run inside Blender (`blender -b --python tests/blender_check.py -- FILE.bvh
POSITIONS.npy NAME,NAME,...`): import our BVH with Blender's own importer (its
default axes: BVH Y up, -Z forward) and compare every bone's head, per frame, with
the joint positions `pipe export positions` wrote (MMM axes, metres, z up — which
is Blender's frame). Prints one JSON line; exits 1 when anything is 1 mm or more off.
"""
import builtins
import json
import struct
import sys

import bpy

# Debian's Blender 3.4 BVH importer opens files with mode 'rU', which Python 3.11
# rejects; drop the 'U'.
_open = builtins.open


def _open_without_u(file, mode="r", *args, **kwargs):
    return _open(file, mode.replace("U", ""), *args, **kwargs)


builtins.open = _open_without_u

argv = sys.argv[sys.argv.index("--") + 1:]
bvh_path, pos_path, names = argv[0], argv[1], argv[2].split(",")


def load_npy(path):
    """float32 C-order .npy without numpy (Blender's Python may lack it)."""
    with _open(path, "rb") as f:
        data = f.read()
    hlen = struct.unpack("<H", data[8:10])[0]
    header = data[10:10 + hlen].decode()
    shape = tuple(int(x) for x in header.split("'shape': (")[1].split(")")[0].split(",") if x.strip())
    n = 1
    for d in shape:
        n *= d
    vals = struct.unpack("<%df" % n, data[10 + hlen:10 + hlen + 4 * n])
    return shape, vals


(frames, points, _), vals = load_npy(pos_path)
assert points == len(names), (points, len(names))

bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_anim.bvh(filepath=bvh_path, global_scale=1.0, frame_start=1,
                        use_fps_scale=False, update_scene_fps=True,
                        update_scene_duration=True, rotate_mode="NATIVE")
arm = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
bones = [b.name for b in arm.pose.bones]
unknown = [b for b in bones if b not in names]
assert not unknown, "Blender made bones we did not export: %s" % unknown
worst = 0.0
for f in range(frames):
    bpy.context.scene.frame_set(1 + f)
    for b in arm.pose.bones:
        head = arm.matrix_world @ b.head
        k = (f * points + names.index(b.name)) * 3
        want = vals[k:k + 3]
        d = sum((head[i] - want[i]) ** 2 for i in range(3)) ** 0.5
        worst = max(worst, d)
print("BLENDER_CHECK " + json.dumps({
    "blender": bpy.app.version_string, "frames": frames, "bones": len(bones),
    "worst_mm": worst * 1000.0}))
sys.stdout.flush()
sys.exit(0 if worst < 1e-3 else 1)
