/** Host-side number rules the reference implementations depend on. */

/**
 * Round half to even: Python's `round()`, torch's `round()`, numpy's `np.round` and OpenCV's
 * `cvRound` (`lrint`) — anchor sizes (torchvision / Detectron) and resized image sides
 * (Detectron's cv2 resize) use it, JavaScript's `Math.round` does not.
 */
export function roundHalfEven(x: number): number {
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : Math.round(x);
}
