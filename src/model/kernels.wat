;; Single-precision matrix product for the GPT-NeoX forward pass, on 128-bit SIMD.
;;
;; Assembled by tools/model/build-kernels.ts (wabt) into kernels-wasm.ts; edit this file, then
;; run `node dist/tools/model/build-kernels.js` and commit both.
;;
;; The memory is imported and shared, so every worker thread runs this code on the same
;; weights and activations.
(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; C[i][n] = bias[n] + sum over j < k of A[i][j] * B[j][n], for i < m and n < 8 * np.
  ;;
  ;; A is row-major with a row stride of lda bytes. B is read in panels of 8 columns: the
  ;; element (j, n) is the float at b + (n / 8) * bps + j * ldb + 4 * (n % 8). Packed weights
  ;; ([N / 8][K][8]) have bps = 32 K and ldb = 32; a row-major [K][N] matrix has bps = 32 and
  ;; ldb = 4 N. C is row-major with a row stride of ldc bytes. bias = 0 means no bias (address 0
  ;; is never a buffer). All strides are in bytes.
  ;;
  ;; Each output is a single running sum over j in order, as a naive dot product would be; a
  ;; tile of 4 rows x 8 columns lives in 8 vector registers (V8 gives wasm 16 on x64, and
  ;; 4 x 8 measured fastest of 4/6/8 x 8 with and without unrolling). Rows left over after the
  ;; 4-row tiles, and products with a single row (one generated token), use a 1-row loop with
  ;; two independent sums (even and odd j) so that the adds do not wait on each other.
  (func $gemm (export "gemm")
    (param $a i32) (param $lda i32) (param $b i32) (param $bps i32) (param $ldb i32)
    (param $c i32) (param $ldc i32) (param $bias i32) (param $m i32) (param $np i32)
    (param $k i32)
    (local $p i32) (local $i i32) (local $m4 i32) (local $bp i32) (local $cp i32)
    (local $ar i32) (local $a0 i32) (local $a1 i32) (local $a2 i32) (local $a3 i32)
    (local $aend i32) (local $apair i32) (local $kb i32) (local $kb2 i32)
    (local $z0 v128) (local $z1 v128) (local $x v128) (local $b0 v128) (local $b1 v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local.set $m4 (i32.and (local.get $m) (i32.const -4)))
    (block $panels_done
      (loop $panels
        (br_if $panels_done (i32.ge_u (local.get $p) (local.get $np)))
        (local.set $bp (i32.add (local.get $b) (i32.mul (local.get $p) (local.get $bps))))
        (if (local.get $bias)
          (then
            (local.set $z0 (v128.load
              (i32.add (local.get $bias) (i32.shl (local.get $p) (i32.const 5)))))
            (local.set $z1 (v128.load offset=16
              (i32.add (local.get $bias) (i32.shl (local.get $p) (i32.const 5))))))
          (else
            (local.set $z0 (v128.const i32x4 0 0 0 0))
            (local.set $z1 (v128.const i32x4 0 0 0 0))))
        (local.set $cp (i32.add (local.get $c) (i32.shl (local.get $p) (i32.const 5))))
        (local.set $ar (local.get $a))
        (local.set $i (i32.const 0))

        ;; 4-row tiles
        (block $tiles_done
          (loop $tiles
            (br_if $tiles_done (i32.ge_u (local.get $i) (local.get $m4)))
            (local.set $a0 (local.get $ar))
            (local.set $a1 (i32.add (local.get $a0) (local.get $lda)))
            (local.set $a2 (i32.add (local.get $a1) (local.get $lda)))
            (local.set $a3 (i32.add (local.get $a2) (local.get $lda)))
            (local.set $aend (i32.add (local.get $a0) (i32.shl (local.get $k) (i32.const 2))))
            (local.set $kb (local.get $bp))
            (local.set $c00 (local.get $z0)) (local.set $c01 (local.get $z1))
            (local.set $c10 (local.get $z0)) (local.set $c11 (local.get $z1))
            (local.set $c20 (local.get $z0)) (local.set $c21 (local.get $z1))
            (local.set $c30 (local.get $z0)) (local.set $c31 (local.get $z1))
            (block $k_done
              (loop $k_loop
                (br_if $k_done (i32.ge_u (local.get $a0) (local.get $aend)))
                (local.set $b0 (v128.load (local.get $kb)))
                (local.set $b1 (v128.load offset=16 (local.get $kb)))
                (local.set $x (v128.load32_splat (local.get $a0)))
                (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $b0))))
                (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x) (local.get $b1))))
                (local.set $x (v128.load32_splat (local.get $a1)))
                (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x) (local.get $b0))))
                (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x) (local.get $b1))))
                (local.set $x (v128.load32_splat (local.get $a2)))
                (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $x) (local.get $b0))))
                (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $x) (local.get $b1))))
                (local.set $x (v128.load32_splat (local.get $a3)))
                (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $x) (local.get $b0))))
                (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $x) (local.get $b1))))
                (local.set $a0 (i32.add (local.get $a0) (i32.const 4)))
                (local.set $a1 (i32.add (local.get $a1) (i32.const 4)))
                (local.set $a2 (i32.add (local.get $a2) (i32.const 4)))
                (local.set $a3 (i32.add (local.get $a3) (i32.const 4)))
                (local.set $kb (i32.add (local.get $kb) (local.get $ldb)))
                (br $k_loop)))
            (v128.store (local.get $cp) (local.get $c00))
            (v128.store offset=16 (local.get $cp) (local.get $c01))
            (local.set $cp (i32.add (local.get $cp) (local.get $ldc)))
            (v128.store (local.get $cp) (local.get $c10))
            (v128.store offset=16 (local.get $cp) (local.get $c11))
            (local.set $cp (i32.add (local.get $cp) (local.get $ldc)))
            (v128.store (local.get $cp) (local.get $c20))
            (v128.store offset=16 (local.get $cp) (local.get $c21))
            (local.set $cp (i32.add (local.get $cp) (local.get $ldc)))
            (v128.store (local.get $cp) (local.get $c30))
            (v128.store offset=16 (local.get $cp) (local.get $c31))
            (local.set $cp (i32.add (local.get $cp) (local.get $ldc)))
            (local.set $ar (i32.add (local.get $ar) (i32.shl (local.get $lda) (i32.const 2))))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $tiles)))

        ;; single rows: sums over even j in c00/c01, over odd j in c10/c11
        (block $rows_done
          (loop $rows
            (br_if $rows_done (i32.ge_u (local.get $i) (local.get $m)))
            (local.set $a0 (local.get $ar))
            (local.set $aend (i32.add (local.get $a0) (i32.shl (local.get $k) (i32.const 2))))
            (local.set $apair (i32.add (local.get $a0)
              (i32.shl (i32.and (local.get $k) (i32.const -2)) (i32.const 2))))
            (local.set $kb (local.get $bp))
            (local.set $kb2 (i32.shl (local.get $ldb) (i32.const 1)))
            (local.set $c00 (local.get $z0)) (local.set $c01 (local.get $z1))
            (local.set $c10 (v128.const i32x4 0 0 0 0)) (local.set $c11 (v128.const i32x4 0 0 0 0))
            (block $pairs_done
              (loop $pairs
                (br_if $pairs_done (i32.ge_u (local.get $a0) (local.get $apair)))
                (local.set $x (v128.load32_splat (local.get $a0)))
                (local.set $c00 (f32x4.add (local.get $c00)
                  (f32x4.mul (local.get $x) (v128.load (local.get $kb)))))
                (local.set $c01 (f32x4.add (local.get $c01)
                  (f32x4.mul (local.get $x) (v128.load offset=16 (local.get $kb)))))
                (local.set $x (v128.load32_splat offset=4 (local.get $a0)))
                (local.set $c10 (f32x4.add (local.get $c10)
                  (f32x4.mul (local.get $x) (v128.load (i32.add (local.get $kb) (local.get $ldb))))))
                (local.set $c11 (f32x4.add (local.get $c11)
                  (f32x4.mul (local.get $x)
                    (v128.load offset=16 (i32.add (local.get $kb) (local.get $ldb))))))
                (local.set $a0 (i32.add (local.get $a0) (i32.const 8)))
                (local.set $kb (i32.add (local.get $kb) (local.get $kb2)))
                (br $pairs)))
            (if (i32.lt_u (local.get $a0) (local.get $aend))
              (then
                (local.set $x (v128.load32_splat (local.get $a0)))
                (local.set $c00 (f32x4.add (local.get $c00)
                  (f32x4.mul (local.get $x) (v128.load (local.get $kb)))))
                (local.set $c01 (f32x4.add (local.get $c01)
                  (f32x4.mul (local.get $x) (v128.load offset=16 (local.get $kb)))))))
            (v128.store (local.get $cp) (f32x4.add (local.get $c00) (local.get $c10)))
            (v128.store offset=16 (local.get $cp) (f32x4.add (local.get $c01) (local.get $c11)))
            (local.set $cp (i32.add (local.get $cp) (local.get $ldc)))
            (local.set $ar (i32.add (local.get $ar) (local.get $lda)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $rows)))

        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $panels)))))
