import QRCode from 'qrcode';

/** A QR code as inline SVG (no external asset), scaled by its container. */
export async function qrSvg(text: string): Promise<string> {
  const svg = await QRCode.toString(text, {
    type: 'svg',
    errorCorrectionLevel: 'M',
    margin: 0,
    color: { dark: '#111827', light: '#ffffff' },
  });
  return svg.replace('<svg ', '<svg role="img" aria-label="QR code" ');
}
