//! The little linear algebra forward kinematics needs: 3-vectors, 3×3 rotation
//! matrices (row-major, acting on column vectors) and Tait–Bryan angles.

pub type Vec3 = [f64; 3];
pub type Mat3 = [[f64; 3]; 3];

pub const IDENTITY: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

pub fn mul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut r = [[0.0; 3]; 3];
    for (i, row) in r.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
        }
    }
    r
}

pub fn apply(a: &Mat3, v: &Vec3) -> Vec3 {
    [
        a[0][0] * v[0] + a[0][1] * v[1] + a[0][2] * v[2],
        a[1][0] * v[0] + a[1][1] * v[1] + a[1][2] * v[2],
        a[2][0] * v[0] + a[2][1] * v[1] + a[2][2] * v[2],
    ]
}

pub fn transpose(a: &Mat3) -> Mat3 {
    [
        [a[0][0], a[1][0], a[2][0]],
        [a[0][1], a[1][1], a[2][1]],
        [a[0][2], a[1][2], a[2][2]],
    ]
}

pub fn add(a: &Vec3, b: &Vec3) -> Vec3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

pub fn sub(a: &Vec3, b: &Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub fn scale(a: &Vec3, s: f64) -> Vec3 {
    [a[0] * s, a[1] * s, a[2] * s]
}

pub fn dot(a: &Vec3, b: &Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub fn cross(a: &Vec3, b: &Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub fn norm(a: &Vec3) -> f64 {
    dot(a, a).sqrt()
}

/// Rotation by `angle` (rad) about the unit `axis` (Rodrigues).
pub fn axis_angle(axis: &Vec3, angle: f64) -> Mat3 {
    let n = norm(axis);
    if n == 0.0 || angle == 0.0 {
        return IDENTITY;
    }
    let [x, y, z] = scale(axis, 1.0 / n);
    let (s, c) = angle.sin_cos();
    let t = 1.0 - c;
    [
        [t * x * x + c, t * x * y - s * z, t * x * z + s * y],
        [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
        [t * x * z - s * y, t * y * z + s * x, t * z * z + c],
    ]
}

/// Rotation about a coordinate axis (0 = x, 1 = y, 2 = z).
pub fn about(axis: usize, angle: f64) -> Mat3 {
    let mut a = [0.0; 3];
    a[axis] = 1.0;
    axis_angle(&a, angle)
}

/// `Rz(yaw) · Ry(pitch) · Rx(roll)`: the MMM root rotation from `RootRotation`
/// (roll, pitch, yaw) = (x, y, z), as Simox's `rpy2eigen4f`.
pub fn rpy(r: &Vec3) -> Mat3 {
    mul(&about(2, r[2]), &mul(&about(1, r[1]), &about(0, r[0])))
}

/// Tait–Bryan angles of `m` for the intrinsic order `axes` (e.g. `[0, 1, 2]`:
/// `m = Rx(a) · Ry(b) · Rz(c)`), the middle angle in [-π/2, π/2].
pub fn euler(m: &Mat3, axes: [usize; 3]) -> Vec3 {
    let [i, j, k] = axes;
    // +1 for cyclic orders (xyz, yzx, zxy), -1 for the others.
    let s = if (j + 3 - i) % 3 == 1 { 1.0 } else { -1.0 };
    let b = (s * m[i][k]).clamp(-1.0, 1.0).asin();
    if (s * m[i][k]).abs() < 1.0 - 1e-12 {
        let a = (-s * m[j][k]).atan2(m[k][k]);
        let c = (-s * m[i][j]).atan2(m[i][i]);
        [a, b, c]
    } else {
        // Gimbal lock: only a ± c is defined; put it all in a.
        let a = (s * m[k][j]).atan2(m[j][j]);
        [a, b, 0.0]
    }
}

/// `R_axes[0](a) · R_axes[1](b) · R_axes[2](c)`.
pub fn from_euler(angles: &Vec3, axes: [usize; 3]) -> Mat3 {
    mul(
        &about(axes[0], angles[0]),
        &mul(&about(axes[1], angles[1]), &about(axes[2], angles[2])),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn close(a: &Mat3, b: &Mat3) -> f64 {
        let mut d: f64 = 0.0;
        for i in 0..3 {
            for j in 0..3 {
                d = d.max((a[i][j] - b[i][j]).abs());
            }
        }
        d
    }

    #[test]
    fn euler_round_trips_every_order() {
        let orders = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        let angles = [
            [0.3, -0.7, 1.2],
            [-2.9, 1.4, 0.1],
            [0.0, 0.0, 0.0],
            [3.0, -1.5, -3.0],
        ];
        for axes in orders {
            for a in angles {
                let m = from_euler(&a, axes);
                let back = euler(&m, axes);
                assert!(
                    close(&from_euler(&back, axes), &m) < 1e-12,
                    "{axes:?} {a:?}"
                );
                assert!((back[1] - a[1]).abs() < 1e-9, "{axes:?} {a:?} {back:?}");
            }
        }
        // Gimbal lock still reproduces the matrix.
        let m = from_euler(&[0.4, std::f64::consts::FRAC_PI_2, 0.2], [0, 1, 2]);
        assert!(close(&from_euler(&euler(&m, [0, 1, 2]), [0, 1, 2]), &m) < 1e-9);
    }

    #[test]
    fn axis_angle_matches_coordinate_rotations() {
        let r = about(2, std::f64::consts::FRAC_PI_2);
        let v = apply(&r, &[1.0, 0.0, 0.0]);
        assert!((v[1] - 1.0).abs() < 1e-12 && v[0].abs() < 1e-12);
        assert!(close(&mul(&r, &transpose(&r)), &IDENTITY) < 1e-12);
        let yaw = rpy(&[0.0, 0.0, 0.5]);
        assert!(close(&yaw, &about(2, 0.5)) < 1e-15);
    }
}
