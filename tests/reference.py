"""Plain Python, written line by line from docs/design.md §4 and §5, with
no numpy tricks: the yardstick the vectorised code is measured against."""

def encode_column(nonzeros, run_bits):
    """nonzeros: [(local_row, code)] with increasing rows -> [(run, code)]."""
    R = 2 ** run_bits - 1
    out = []
    prev = -1
    for l, c in nonzeros:
        gap = l - prev - 1
        while gap > R:
            out.append((R, 0))
            prev += R + 1
            gap -= R + 1
        out.append((gap, c))
        prev = l
    return out


def pack_reference(codes, n_pe, run_bits):
    """codes: list of rows (n_out x n_in ints). Returns, per PE, (entries as
    (run, code) list, pointers list)."""
    n_out, n_in = len(codes), len(codes[0])
    result = []
    for k in range(n_pe):
        entries, pointers = [], []
        for j in range(n_in):
            pointers.append(len(entries))
            nz = [(r // n_pe, codes[r][j]) for r in range(k, n_out, n_pe) if codes[r][j] != 0]
            entries.extend(encode_column(nz, run_bits))
        pointers.append(len(entries))
        result.append((entries, pointers))
    return result


def wrap(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def run_layer_reference(pe_slices, codebook, bias, x, *, n_out, n_pe, shift, relu, acc_bits, act_bits, run_bits):
    """One layer from per-PE (entries, pointers), entry = (run, code)."""
    acc = [wrap(int(b), acc_bits) for b in bias]
    for k, (entries, pointers) in enumerate(pe_slices):
        for j, a in enumerate(x):
            if a == 0:
                continue
            row = -1
            for run, code in entries[pointers[j]:pointers[j + 1]]:
                row += run + 1
                if code:
                    r = row * n_pe + k
                    acc[r] = wrap(acc[r] + int(codebook[code]) * int(a), acc_bits)
    out = []
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    for v in acc:
        y = (v + (1 << (shift - 1))) >> shift if shift else v
        if relu:
            y = max(y, 0)
        out.append(min(max(y, lo), hi))
    return out


def run_image_reference(image, x):
    """Every layer's outputs for one input vector, from the image's entries."""
    c = image.config
    outs = []
    x = [int(v) for v in x]
    for layer in image.layers:
        slices = []
        for pe in layer.pes:
            ent = [(int(e) & ((1 << c.run_bits) - 1), int(e) >> c.run_bits) for e in pe.entries]
            slices.append((ent, [int(p) for p in pe.pointers]))
        x = run_layer_reference(slices, layer.codebook, layer.bias, x, n_out=layer.n_out, n_pe=c.n_pe,
                                shift=layer.shift, relu=layer.relu, acc_bits=c.acc_bits, act_bits=c.act_bits,
                                run_bits=c.run_bits)
        outs.append(x)
    return outs
